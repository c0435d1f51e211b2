"""Building blocks of the scenario tests: specs, scripted measurements, a canary in flight."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from coalmine.rollout import Measurement

from .sim import VALUE_CHECK, Measure, Sim, spec_for, value_check, with_version

STEPS = [
    {"weight": 10, "pause": "1m"},
    {"weight": 30, "pause": "1m"},
    {"weight": 60, "pause": "1m"},
]
PASS, FAIL, NAN = 0.5, 2.0, float("nan")


def canary_spec(
    checks: Sequence[dict[str, Any]] = VALUE_CHECK,
    policy: dict[str, Any] | None = None,
    steps: Sequence[dict[str, Any]] = STEPS,
    **extra: Any,
) -> Any:
    canary: dict[str, Any] = {"steps": list(steps), "analysis": {"checks": list(checks)}}
    if policy:
        canary["policy"] = policy
    return spec_for("v1", canary=canary, **extra)


def script(*values: float) -> Measure:
    """The ``custom`` check's values, one per measurement; the last one repeats."""
    calls: list[int] = [0]

    def measure(sim: Sim) -> tuple[Measurement, ...]:
        value = values[min(calls[0], len(values) - 1)]
        calls[0] += 1
        return value_check(value)

    return measure


def canary_on(version: str = "v2", measure: Measure | None = None, **spec_kw: Any) -> Sim:
    """v1 healthy, then the spec moves to ``version``: the tick after this starts the canary."""
    sim = Sim(canary_spec(**spec_kw))
    sim.healthy_on("v1")
    sim.decisions.clear()
    sim.observed.clear()
    if measure is not None:
        sim.measure = measure
    sim.spec = with_version(sim.spec, version)
    return sim


def finished(sim: Sim) -> bool:
    return sim.status.phase in ("Healthy", "Degraded") and sim.status.canary is None


def applied_weights(sim: Sim) -> list[int]:
    """Distinct weights the router was told, in order."""
    out: list[int] = []
    for d in sim.decisions:
        if not out or out[-1] != d.canary_weight:
            out.append(d.canary_weight)
    return out


def event_reasons(sim: Sim) -> list[str]:
    return [e.reason for d in sim.decisions for e in d.events]
