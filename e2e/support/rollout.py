"""ModelDeployments and status waits for the operator scenarios."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coalmine.devcluster.specs import DEFAULT_CHECKS as CHECKS
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
