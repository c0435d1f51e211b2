"""Monte Carlo of whole rollouts through ``decide``: how often a healthy canary is rolled back,
and how often a canary with a doubled error rate is caught.

Each run is the real engine (``decide`` tick by tick in the simulator) fed with random counts:
requests arrive as a Poisson process at ``rps``, split by the weight the router is observed at;
each request fails with the side's error probability. Every measurement covers the range
``analysis_window`` asks for (since the step started, at least the analysis window). Latency
p99 is noisy but equal on both sides and nothing is refused for load (saturation 0), so only
the error-rate check can decide.

Reproduce the table in docs/analysis.md:
    .venv/bin/python -m tests.coalmine.rollout.errorsim
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from coalmine.api import ModelDeploymentSpec
from coalmine.rollout import Measurement, SideMeasurement, analysis_window
from coalmine.rollout.stats import wilson_bounds

from .sim import Sim, spec_for, with_version


@dataclass
class Traffic:
    """Counts per tick, so any window can be summed afterwards."""

    rng: np.random.Generator
    rps: float
    stable_rate: float
    canary_rate: float
    last: datetime | None = None
    log: list[tuple[datetime, int, int, int, int]] = field(default_factory=list)

    def measure(self, sim: Sim) -> tuple[Measurement, ...]:
        now, weight = sim.now, (sim.observed_weight() or 0) / 100
        seconds = (now - self.last).total_seconds() if self.last else sim.max_step
        self.last = now
        n_c = int(self.rng.poisson(self.rps * weight * seconds))
        n_s = int(self.rng.poisson(self.rps * (1 - weight) * seconds))
        e_c = int(self.rng.binomial(n_c, self.canary_rate))
        e_s = int(self.rng.binomial(n_s, self.stable_rate))
        self.log.append((now, n_c, e_c, n_s, e_s))
        since = now - analysis_window(sim.spec.canary, sim.status.step_started_at, now)
        n_c, e_c, n_s, e_s = (
            sum(row[i] for row in self.log if row[0] > since) for i in (1, 2, 3, 4)
        )
        p99 = 0.1 * (1 + 0.05 * self.rng.standard_normal(2))
        return (
            Measurement(
                "error-rate",
                SideMeasurement(samples=n_c, errors=e_c),
                SideMeasurement(samples=n_s, errors=e_s),
            ),
            Measurement(
                "latency-p99",
                SideMeasurement(value=float(p99[0]), samples=n_c),
                SideMeasurement(value=float(p99[1]), samples=n_s),
            ),
            Measurement(
                "saturation",
                SideMeasurement(samples=n_c, errors=0),
                SideMeasurement(samples=n_s, errors=0),
            ),
        )


def one_rollout(spec: ModelDeploymentSpec, traffic: Traffic) -> str:
    """Outcome of one canary of v2 after v1 is healthy: Promoted, RolledBack or Paused."""
    sim = Sim(spec)
    sim.healthy_on("v1")
    sim.spec = with_version(sim.spec, "v2")
    sim.measure = traffic.measure
    for _ in range(2000):
        sim.tick()
        if sim.status.phase == "Paused":
            return "Paused"
        if sim.status.canary is None:
            return sim.status.history[-1].outcome
    raise AssertionError("rollout did not finish")


@dataclass(frozen=True)
class Rates:
    runs: int
    rolled_back: int
    paused: int

    @property
    def rate(self) -> float:
        return self.rolled_back / self.runs

    def interval(self) -> tuple[float, float]:
        low, _ = wilson_bounds(self.rolled_back, self.runs, 0.975)
        _, high = wilson_bounds(self.rolled_back, self.runs, 0.975)
        return low, high


def simulate(
    spec: ModelDeploymentSpec, rps: float, base: float, factor: float, runs: int, seed: int
) -> Rates:
    rng = np.random.default_rng(seed)
    outcomes = [one_rollout(spec, Traffic(rng, rps, base, base * factor)) for _ in range(runs)]
    return Rates(runs, outcomes.count("RolledBack"), outcomes.count("Paused"))


def default_spec(**canary: Any) -> ModelDeploymentSpec:
    """The defaults (steps 10%/1m, 50%/1m, default checks and policy), 10 stable pods, gateway
    router so the weight is exact (the replicas router rounds it to a pod ratio)."""
    extra: dict[str, Any] = {
        "traffic": {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}},
        "runtime": {"replicas": 10},
    }
    if canary:
        extra["canary"] = {"steps": [{"weight": 10}, {"weight": 50}], **canary}
    return spec_for("v1", **extra)


def _row(label: str, spec: ModelDeploymentSpec, rps: float, runs: int) -> str:
    healthy = simulate(spec, rps, 0.01, 1.0, runs, seed=1)
    doubled = simulate(spec, rps, 0.01, 2.0, runs, seed=2)
    fmt = lambda r: f"{100 * r.rate:.1f}% [{100 * r.interval()[0]:.1f}-{100 * r.interval()[1]:.1f}]"  # noqa: E731
    return f"| {label} | {rps:g} | {fmt(healthy)} | {fmt(doubled)} | {doubled.paused} |"


def main(runs: int = 1000) -> None:
    long_steps = [{"weight": 10, "pause": "5m"}, {"weight": 50, "pause": "5m"}]
    looser = [
        {"name": "error-rate", "errorRate": {"max": 0.05, "vsStable": {"confidence": 0.95}}},
        {"name": "latency-p99", "latency": {"quantile": 0.99, "vsStable": {}}},
    ]
    print("| settings | rps | false rollbacks (95% CI) | detection of 2x errors (95% CI) | held |")
    print("|---|---|---|---|---|")
    for label, spec, rps in [
        ("defaults", default_spec(), 200),
        ("defaults", default_spec(), 100),
        ("defaults", default_spec(), 20),
        ("steps 10%/5m, 50%/5m", default_spec(steps=long_steps), 20),
        ("vsStable.confidence 0.95", default_spec(analysis={"checks": looser}), 200),
    ]:
        print(_row(label, spec, rps, runs), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
