"""ModelDeployment specs for the scenarios: short intervals so the tier stays fast."""

from __future__ import annotations

from typing import Any

FAST_ANALYSIS = {"interval": "2s", "window": "6s"}


def spec(
    model: dict[str, Any],
    *,
    checks: list[dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
    steps: list[dict[str, Any]] | None = None,
    policy: dict[str, Any] | None = None,
    prometheus: str,
    traffic: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "model": model,
        "traffic": traffic or {"router": "replicas"},
        "runtime": {
            "replicas": 2,
            "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
        },
        "canary": {
            "steps": steps or [{"weight": 20, "pause": "4s"}, {"weight": 50, "pause": "4s"}],
            "analysis": {
                **FAST_ANALYSIS,
                "prometheus": {"address": prometheus, "timeout": "2s"},
                "checks": checks or DEFAULT_CHECKS,
            },
            "policy": {
                "failureLimit": 2,
                "minSamples": 10,
                # Long enough for a step's first scrapes on a loaded machine: at load 8 on two
                # cores (two test workers) a canary's step 0 once stayed without data for 12 s
                # and was paused, correctly, by a spec that expected a promotion.
                "inconclusiveLimit": "30s",
                "onInconclusive": "pause",
                **(policy or {}),
            },
            "progressDeadline": "90s",
        },
        "rollback": {"scaleDownDelay": "2s"},
    }


DEFAULT_CHECKS = [
    {"name": "error-rate", "errorRate": {"max": 0.05}},
    {"name": "latency-p99", "latency": {"quantile": 0.99, "maxSeconds": 1.0}},
]
