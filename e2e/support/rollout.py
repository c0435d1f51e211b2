"""The installed product, ModelDeployments and status waits for the operator scenarios."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.devcluster.binaries import kube_bin_dir
from e2e.devcluster.product import InstalledProduct
from e2e.devcluster.servicetraffic import wait_until_routed
from e2e.devcluster.specs import DEFAULT_CHECKS as CHECKS
from e2e.support.kube import Kube, eventually

GROUP_VERSION = "coalmine.dev/v1alpha1"
# Longer than the integration tier's: real pods take seconds to start and to drain.
FAST_ANALYSIS = {"interval": "2s", "window": "8s"}
STEPS = [{"weight": 20, "pause": "6s"}, {"weight": 50, "pause": "6s"}]
NAME = "iris"
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}


@dataclass
class World:
    """The operator installed by helm on the cluster under test, with the tiny models'
    artifacts served to pods and a Prometheus that discovers them."""

    kube: Kube
    kube_config: Path
    product: InstalledProduct

    def apply_version(self, ns: str, version: str, artifact: str = "good", **kw: Any) -> None:
        """``artifact``: good, inverted or shifted (e2e.devcluster.tinymodels)."""
        model = self.product.model(version, getattr(self.product.models, artifact))
        self.kube.apply(model_deployment(ns, NAME, model, **kw))

    def events(self, ns: str, reason: str) -> list[str]:
        return [e for e in self.kube.events(ns) if f": {reason}: " in e]

    def events_with(self, ns: str, reason: str, timeout: float = 20) -> list[str]:
        """The ``reason`` Events, once there is one: the operator posts a tick's Events just
        after its status write, so a test that has just seen the status can look too soon."""
        return eventually(
            lambda: self.events(ns, reason) or None, timeout=timeout, what=f"a {reason} Event"
        )


def given_v1_serving(world: World, ns: str, **kw: Any) -> dict[str, Any]:
    """v1 Healthy, and its Service routing to it (kube-proxy has programmed the endpoints)."""
    world.apply_version(ns, "v1", **kw)
    status = wait_status(world.kube, ns, NAME, lambda s: s.get("phase") == "Healthy", 300,
                         "v1 to become Healthy")  # fmt: skip
    wait_until_routed(world.kube.service_url(ns, NAME), NAME, "v1")
    return status


def rolled_back(world: World, ns: str, version: str, timeout: float = 420) -> dict[str, Any]:
    """The status once the canary is rolled back (Degraded); fails if it is promoted."""

    def degraded(status: dict[str, Any]) -> bool:
        promoted = (status.get("stable") or {}).get("version") == version
        assert not promoted, f"{version} was promoted: {status.get('analysis')}"
        return status.get("phase") == "Degraded"

    return wait_status(world.kube, ns, NAME, degraded, timeout, f"{version} to be rolled back")


def rollback_decided(world: World, ns: str, version: str, timeout: float = 420) -> dict[str, Any]:
    """The status once the operator has decided to roll the canary back (``status.rollback``
    names the check), without waiting the few seconds its pods take to drain: for scenarios
    about which check decides; how a rollback unfolds is test_rollouts.py's."""

    def decided(status: dict[str, Any]) -> bool:
        promoted = (status.get("stable") or {}).get("version") == version
        assert not promoted, f"{version} was promoted: {status.get('analysis')}"
        return bool((status.get("rollback") or {}).get("check"))

    return wait_status(world.kube, ns, NAME, decided, timeout, f"{version} to be rolled back")


def check_status(status: dict[str, Any], name: str) -> dict[str, Any]:
    """The named check's record in the status' last analysis."""
    checks = (status.get("analysis") or {}).get("checks") or []
    found: list[dict[str, Any]] = [c for c in checks if c["name"] == name]
    assert found, f"no check {name} in {checks}"
    return found[0]


def model_deployment(
    namespace: str,
    name: str,
    model: dict[str, Any],
    *,
    env: dict[str, str] | None = None,
    checks: list[dict[str, Any]] | None = None,
    replicas: int = 2,
    steps: list[dict[str, Any]] | None = None,
    analysis: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
    rollback: dict[str, Any] | None = None,
    placement: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``placement``: more ``spec.runtime`` fields (``topologySpreadConstraints``, ...)."""
    spec = {
        "model": model,
        "runtime": {
            "replicas": replicas,
            "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
            **(placement or {}),
        },
        "canary": {
            "steps": steps or STEPS,
            "analysis": {**FAST_ANALYSIS, **(analysis or {}), "checks": checks or CHECKS},
            "policy": {
                "failureLimit": 2,
                "minSamples": 10,
                "inconclusiveLimit": "30s",
                "onInconclusive": "pause",
                **(policy or {}),
            },
            "progressDeadline": "180s",
        },
        "rollback": {"scaleDownDelay": "2s", **(rollback or {})},
    }
    return {"apiVersion": GROUP_VERSION, "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}  # fmt: skip


def md_status(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    status: dict[str, Any] = (
        kube.get(GROUP_VERSION, "ModelDeployment", name, namespace).get("status") or {}
    )
    return status


def wait_status(
    kube: Kube, namespace: str, name: str, check: Callable[[dict[str, Any]], bool],
    timeout: float, what: str,
) -> dict[str, Any]:  # fmt: skip
    def probe() -> dict[str, Any] | None:
        status = md_status(kube, namespace, name)
        return status if check(status) else None

    try:
        return eventually(probe, timeout=timeout, what=what)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\nlast status: {md_status(kube, namespace, name)}") from exc


def kubectl_coalmine(kubeconfig: Path, *args: str) -> str:
    """`kubectl coalmine ARGS` the way users run it: the real kubectl (from our Kubernetes
    build) finding our plugin, `kubectl-coalmine`, on PATH. Returns stdout; fails loudly."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    # kubectl refuses flags before a plugin's name: the plugin reads --kubeconfig itself.
    argv = [str(kube_bin_dir() / "kubectl"), "coalmine", *args, f"--kubeconfig={kubeconfig}"]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": path},
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stdout}{done.stderr}"
    return done.stdout
