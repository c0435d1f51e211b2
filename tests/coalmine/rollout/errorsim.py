"""Monte Carlo of whole rollouts through ``decide``: how often a healthy canary is rolled back,
and how often (and how fast) a worse canary is caught.

Each run is the real engine (``decide`` tick by tick in the simulator) fed with random counts:
requests arrive as a Poisson process at ``rps``, split by the weight the router is observed at;
each request fails with its side's error probability; a share of the requests come back
labelled, each label correct with its side's accuracy; each request's latency is lognormal,
counted in the server's latency buckets (the canary's times ``canary_slowdown``); when the
canary names class shares, each request's prediction falls in a class drawn from its side's
shares (the drift study); nothing is refused for load (saturation 0). A measurement covers
either the range ``analysis_window`` asks for (since the step started, at least the analysis
window: what the operator queries), or, for the Argo/Flagger-style threshold checks, the
last ``window`` only.

``bench/power.py`` runs the study of docs/analysis.md on this. Run alone, this module prints
the error-rate check's rates at the default settings (error-rate and latency checks only):
    .venv/bin/python -m tests.coalmine.rollout.errorsim
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing
from scipy import stats

from coalmine.api import ModelDeploymentSpec
from coalmine.api.checks import CheckKind
from coalmine.rollout import Measurement, SideMeasurement, analysis_window
from coalmine.rollout.stats import psi, wilson_bounds
from coalmine_serving.contract import LATENCY_BUCKETS

from .sim import Sim, spec_for, with_version

LATENCY_MEDIAN = 0.002
LATENCY_SIGMA = 0.6
"""Median 2 ms and sigma 0.6: a p99 of 8 ms, about the healthy canary of the false rollback
that motivated the sequential latency test (p99 5-11 ms on a loaded machine)."""
EDGES = (*LATENCY_BUCKETS, math.inf)


@dataclass(frozen=True)
class Canary:
    """How the two sides behave: error rates, accuracies, and the share of labelled requests."""

    stable_errors: float = 0.01
    canary_errors: float = 0.01
    stable_accuracy: float = 0.9
    canary_accuracy: float = 0.9
    labelled: float = 0.5
    median_seconds: float = LATENCY_MEDIAN
    """Request latency is lognormal (median, ``LATENCY_SIGMA``) on both sides..."""
    canary_slowdown: float = 1.0
    """...and every canary request takes this many times longer (1.5: p99 +50%)."""
    stable_classes: tuple[float, ...] = ()
    """Share of predictions in each class on stable (empty: predictions are not simulated)..."""
    canary_classes: tuple[float, ...] = ()
    """...and on the canary (empty: as stable)."""
    canary_refused: float = 0.0
    """Share of the canary's requests refused for load (503/504, the saturation check)..."""
    stable_refused: float = 0.0
    """...and of stable's (both 0: refusals are not simulated)."""

    @property
    def refusals(self) -> bool:
        return bool(self.canary_refused or self.stable_refused)

    def latency_shares(self, slowdown: float) -> np.typing.NDArray[np.float64]:
        """Share of requests in each of the server's latency buckets (+Inf last)."""
        edges = np.array(LATENCY_BUCKETS)
        below = stats.lognorm.cdf(edges, LATENCY_SIGMA, scale=self.median_seconds * slowdown)
        return np.diff(np.concatenate([[0.0], below, [1.0]]))


@dataclass
class Traffic:
    """Counts per tick, so any window can be summed afterwards."""

    rng: np.random.Generator
    rps: float
    canary: Canary
    last: datetime | None = None
    log: list[tuple[datetime, tuple[int, ...]]] = field(default_factory=list)
    shares: dict[float, np.typing.NDArray[np.float64]] = field(default_factory=dict)

    def measure(self, sim: Sim) -> tuple[Measurement, ...]:
        now, weight = sim.now, (sim.observed_weight() or 0) / 100
        seconds = (now - self.last).total_seconds() if self.last else sim.max_step
        self.last = now
        self.log.append((now, self._tick(weight, seconds)))
        analysis = sim.spec.canary.analysis
        step_window = analysis_window(sim.spec.canary, sim.status.step_started_at, now)
        return tuple(
            self._measurement(check.name, check.kind, now, step_window, analysis.query_window())
            for check in analysis.checks
        )

    def _tick(self, weight: float, seconds: float) -> tuple[int, ...]:
        """Counts of the tick: per side (canary, stable) requests, errors, labels, correct
        labels; then the canary's requests per latency bucket, then stable's; then, when
        simulated, the canary's predictions per class, then stable's."""
        c, rng = self.canary, self.rng
        counts: list[int] = []
        latency: list[int] = []
        classes: list[int] = []
        refused: list[int] = []
        for share, errors, accuracy, slowdown, predicted, shed in (
            (weight, c.canary_errors, c.canary_accuracy, c.canary_slowdown, c.canary_classes,
             c.canary_refused),
            (1 - weight, c.stable_errors, c.stable_accuracy, 1.0, c.stable_classes,
             c.stable_refused),
        ):  # fmt: skip
            n = int(rng.poisson(self.rps * share * seconds))
            labels = int(rng.binomial(n, c.labelled))
            counts += [n, int(rng.binomial(n, errors)), labels, int(rng.binomial(labels, accuracy))]
            latency += [int(k) for k in rng.multinomial(n, self._shares(slowdown))]
            if c.stable_classes:  # drawn only then, so the other studies keep their numbers
                classes += [int(k) for k in rng.multinomial(n, predicted or c.stable_classes)]
            if c.refusals:  # likewise: drawn only when simulated
                refused.append(int(rng.binomial(n, shed)))
        return (*counts, *latency, *classes, *refused)

    def _shares(self, slowdown: float) -> np.typing.NDArray[np.float64]:
        if slowdown not in self.shares:
            self.shares[slowdown] = self.canary.latency_shares(slowdown)
        return self.shares[slowdown]

    def _sum(self, now: datetime, window: timedelta) -> tuple[int, ...]:
        since = now - window
        rows = [counts for at, counts in self.log if at > since]
        width = len(self.log[-1][1])
        return tuple(int(sum(r[i] for r in rows)) for i in range(width))

    def _classes(self, now: datetime, window: timedelta) -> tuple[list[int], list[int]]:
        """Each side's predictions per class over ``window``."""
        k = len(self.canary.stable_classes)
        start = 8 + 2 * len(EDGES)
        counts = list(self._sum(now, window)[start : start + 2 * k])
        return counts[:k], counts[k:]

    def _drift(self, name: str, now: datetime, window: timedelta) -> Measurement:
        canary, stable = self._classes(now, window)
        if name == "drift-threshold":  # Argo/Flagger style: the PSI of the last window
            value = psi(canary, stable) if sum(canary) and sum(stable) else float("nan")
            return Measurement(name, SideMeasurement(value=value, samples=sum(canary)))
        sides = [
            SideMeasurement(
                samples=float(sum(counts)),
                distribution=tuple((f"class-{i}", float(k)) for i, k in enumerate(counts)),
            )
            for counts in (canary, stable)
        ]
        return Measurement(name, sides[0], sides[1])

    def _latency(self, now: datetime, window: timedelta) -> tuple[SideMeasurement, ...]:
        """Each side's p99 (interpolated in its bucket, as ``histogram_quantile``) and its
        cumulative histogram, over ``window``."""
        buckets = self._sum(now, window)[8:]
        sides = []
        for counts in (buckets[: len(EDGES)], buckets[len(EDGES) :]):
            cumulative = tuple(zip(EDGES, np.cumsum(counts).astype(float).tolist(), strict=True))
            sides.append(
                SideMeasurement(
                    value=histogram_quantile(0.99, cumulative),
                    samples=float(sum(counts)),
                    latency_buckets=cumulative,
                )
            )
        return tuple(sides)

    def _p99_ratio(self, name: str, now: datetime, window: timedelta) -> Measurement:
        canary, stable = self._latency(now, window)
        ratio = (canary.value or 0) / stable.value if stable.value else float("nan")
        return Measurement(name, SideMeasurement(value=ratio, samples=canary.samples))

    def _measurement(
        self, name: str, kind: CheckKind, now: datetime, step: timedelta, sliding: timedelta
    ) -> Measurement:
        if name == "drift-threshold":
            return self._drift(name, now, sliding)
        if kind == CheckKind.DRIFT:
            return self._drift(name, now, step)
        if name == "latency-ratio":  # coalmine until now: the p99 ratio over the step's window
            return self._p99_ratio(name, now, step)
        if name == "latency-threshold":  # Argo/Flagger style: the p99 ratio of the last window
            return self._p99_ratio(name, now, sliding)
        if kind == CheckKind.PROMQL:  # Argo/Flagger style: the last window only, a point value
            n, e, nl, ok, sn, se, snl, sok = self._sum(now, sliding)[:8]
            if name == "error-rate":
                return Measurement(name, _point(e, n, n), _point(se, sn, sn))
            drop = sok / snl - ok / nl if nl and snl else float("nan")
            return Measurement(name, SideMeasurement(value=drop, samples=nl))
        n, e, nl, ok, sn, se, snl, sok = self._sum(now, step)[:8]
        if kind == CheckKind.LATENCY:
            canary, stable = self._latency(now, step)
            return Measurement(name, canary, stable)
        if kind == CheckKind.QUALITY:
            return Measurement(
                name,
                SideMeasurement(samples=nl, correct=ok),
                SideMeasurement(samples=snl, correct=sok),
            )
        if kind == CheckKind.SATURATION:  # refused for load: the last two counts, when drawn
            refused, stable_refused = self._sum(now, step)[-2:] if self.canary.refusals else (0, 0)
            return Measurement(
                name,
                SideMeasurement(samples=n, errors=refused),
                SideMeasurement(samples=sn, errors=stable_refused),
            )
        return Measurement(
            name, SideMeasurement(samples=n, errors=e), SideMeasurement(samples=sn, errors=se)
        )


def histogram_quantile(q: float, cumulative: tuple[tuple[float, float], ...]) -> float | None:
    """Prometheus's ``histogram_quantile``: linear within the bucket holding the quantile
    (None without requests; the last finite edge when it is in the +Inf bucket)."""
    total = cumulative[-1][1]
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for edge, count in cumulative:
        if count >= rank:
            if math.isinf(edge):
                return lower
            return lower + (edge - lower) * (rank - below) / (count - below)
        lower, below = edge, count
    return lower


def _point(hits: int, n: int, samples: int) -> SideMeasurement:
    return SideMeasurement(value=hits / n if n else float("nan"), samples=samples)


@dataclass(frozen=True)
class Outcome:
    """How one rollout ended, which check decided, and when the rollback began (seconds from
    the canary's start)."""

    outcome: str
    check: str | None = None
    seconds: float | None = None


def one_rollout(spec: ModelDeploymentSpec, traffic: Traffic) -> Outcome:
    """One canary of v2 after v1 is healthy: Promoted, RolledBack or Paused."""
    sim = Sim(spec)
    sim.healthy_on("v1")
    sim.spec = with_version(sim.spec, "v2")
    sim.measure = traffic.measure
    start = sim.now
    for _ in range(2000):
        sim.tick()
        status = sim.status
        if status.phase == "Paused":
            return Outcome("Paused")
        if status.rollback is not None:
            seconds = (status.rollback.started_at - start).total_seconds()
            return Outcome(status.rollback.outcome, status.rollback.check, seconds)
        if status.canary is None:
            return Outcome(status.history[-1].outcome)
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


def outcomes(
    spec: ModelDeploymentSpec, rps: float, canary: Canary, runs: int, seed: int
) -> list[Outcome]:
    rng = np.random.default_rng(seed)
    return [one_rollout(spec, Traffic(rng, rps, canary)) for _ in range(runs)]


def simulate(
    spec: ModelDeploymentSpec, rps: float, base: float, factor: float, runs: int, seed: int
) -> Rates:
    """Error rates only: stable errs ``base`` of the time, the canary ``base * factor``."""
    ends = outcomes(spec, rps, Canary(base, base * factor), runs, seed)
    kinds = [o.outcome for o in ends]
    return Rates(runs, kinds.count("RolledBack"), kinds.count("Paused"))


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
    return f"| {label} | {rps:g} | {_percent(healthy)} | {_percent(doubled)} | {doubled.paused} |"


def _percent(rates: Rates) -> str:
    low, high = rates.interval()
    return f"{100 * rates.rate:.1f}% [{100 * low:.1f}-{100 * high:.1f}]"


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
