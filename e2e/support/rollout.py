"""ModelDeployments and status waits for the operator scenarios."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from e2e.devcluster.binaries import kube_bin_dir
from e2e.devcluster.specs import DEFAULT_CHECKS as CHECKS
from e2e.support.kube import Kube, eventually

GROUP_VERSION = "coalmine.dev/v1alpha1"
# Longer than the integration tier's: real pods take seconds to start and to drain.
FAST_ANALYSIS = {"interval": "2s", "window": "8s"}


def model_deployment(
    namespace: str,
    name: str,
    model: dict[str, Any],
    *,
    env: dict[str, str] | None = None,
    checks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec = {
        "model": model,
        "runtime": {
            "replicas": 2,
            "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
        },
        "canary": {
            "steps": [{"weight": 20, "pause": "6s"}, {"weight": 50, "pause": "6s"}],
            "analysis": {**FAST_ANALYSIS, "checks": checks or CHECKS},
            "policy": {
                "failureLimit": 2,
                "minSamples": 10,
                "inconclusiveLimit": "30s",
                "onInconclusive": "pause",
            },
            "progressDeadline": "180s",
        },
        "rollback": {"scaleDownDelay": "2s"},
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
