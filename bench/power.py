"""The power of the comparison checks, through the real ``decide()`` (docs/analysis.md).

For each method (the sequential test, today's fixed-look Fisher test, an Argo/Flagger-style
threshold per look), each traffic level and each canary (healthy, error rate x2, accuracy -5
points with labels for half the requests), whole rollouts are simulated tick by tick
(``tests/coalmine/rollout/errorsim.py``): the false-rollback rate of healthy canaries with its
95% interval, the detection rate, and the median time from the canary's start to the rollback.

    nice .venv/bin/python -m bench.power --all      # every published table (about 1.5 h)
    nice .venv/bin/python -m bench.power            # quick: 300 runs per cell, a few minutes
    nice .venv/bin/python -m bench.power --full     # the table: 3000 healthy, 1000 worse runs
    nice .venv/bin/python -m bench.power --pause 2m # the same with two-minute steps
    nice .venv/bin/python -m bench.power --runs 1000 300   # other run counts
    nice .venv/bin/python -m bench.power --ceiling  # the best possible test's power, errors x2
    nice .venv/bin/python -m bench.power --latency  # latency vs stable: healthy, p99 x1.5/2/3
    nice .venv/bin/python -m bench.power --drift    # prediction drift: healthy, PSI 0.06, 0.26
    nice .venv/bin/python -m bench.power --limits   # errorRate.max: healthy, at the limit, 2x
    nice .venv/bin/python -m bench.power --limits --runs 3000 100 --at-limit-runs 200
    nice .venv/bin/python -m bench.power --saturation  # refused for load: healthy, limit, flood
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from tests.coalmine.rollout.errorsim import Canary, Outcome, default_spec, outcomes

from coalmine.api import ModelDeploymentSpec
from coalmine.rollout.stats import wilson_bounds

RPS = (20, 100, 200)
CANARIES = {
    "healthy": Canary(),
    "errors x2": Canary(canary_errors=0.02),
    "accuracy -5 points": Canary(canary_accuracy=0.85),
}
DECIDING = {"healthy": None, "errors x2": "error-rate", "accuracy -5 points": "accuracy"}

# --latency: the latency check alone (maxRatio 1.5 at p99), every request lognormal.
LATENCY_CANARIES = {
    "healthy": Canary(),
    "p99 +50%": Canary(canary_slowdown=1.5),
    "p99 x2": Canary(canary_slowdown=2.0),
    "p99 x3": Canary(canary_slowdown=3.0),
}
SEQUENTIAL_LATENCY = {"name": "latency", "latency": {"quantile": 0.99, "vsStable": {}}}
RATIO_LATENCY = {"name": "latency-ratio", "promql": {"query": "p99 ratio", "max": 1.5}}
THRESHOLD_LATENCY = {
    "name": "latency-threshold", "promql": {"query": "p99 ratio, last minute", "max": 1.5}
}  # fmt: skip
LATENCY_METHODS: dict[str, dict[str, Any]] = {
    "sequential, every 10s": {"interval": "10s", "window": "10s", "checks": [SEQUENTIAL_LATENCY]},
    # coalmine until now: canary p99 / stable p99 <= 1.5 over the step's window, per look
    "today: p99 ratio, every 30s": {"interval": "30s", "checks": [RATIO_LATENCY]},
    "today: p99 ratio, every 10s": {"interval": "10s", "window": "10s", "checks": [RATIO_LATENCY]},
    # the tolerance is maxRatio: a +50% canary is within 1.5, and is failed only under 1.0
    "sequential, maxRatio 1.0, every 10s": {
        "interval": "10s",
        "window": "10s",
        "checks": [
            {"name": "latency", "latency": {"quantile": 0.99, "vsStable": {"maxRatio": 1.0}}}
        ],
    },
    # Argo/Flagger style: canary p99 / stable p99 of the last minute, per look (appended last,
    # so the rows above keep their seeds)
    "threshold per look, every 30s": {"interval": "30s", "checks": [THRESHOLD_LATENCY]},
}


# --drift: the drift check alone (max 0.2), predictions (or an input's values) in ten buckets,
# stable's deciles (as docs/analysis.md suggests choosing edges); the canaries' mass moves up.
STABLE_CLASSES = (0.1,) * 10
DRIFT_CANARIES = {
    "healthy": Canary(stable_classes=STABLE_CLASSES),
    # PSI 0.06 against stable: real but below max, so it must not roll back
    "PSI 0.06": Canary(
        stable_classes=STABLE_CLASSES,
        canary_classes=(0.066, 0.072, 0.078, 0.085, 0.093, 0.101, 0.11, 0.12, 0.131, 0.144),
    ),
    # PSI 0.26: the "large" band, above max 0.2
    "PSI 0.26": Canary(
        stable_classes=STABLE_CLASSES,
        canary_classes=(0.039, 0.046, 0.055, 0.067, 0.08, 0.096, 0.115, 0.138, 0.166, 0.198),
    ),
}
DRIFT_THRESHOLD = {"name": "drift-threshold", "promql": {"query": "psi", "max": 0.2}}
DRIFT_METHODS: dict[str, dict[str, Any]] = {
    "sequential, every 10s": {
        "interval": "10s",
        "window": "10s",
        "checks": [{"name": "drift", "drift": {"max": 0.2}}],
    },
    # coalmine until now: PSI over the step's window against max, per look
    "today: PSI per look, every 30s": {
        "interval": "30s",
        "checks": [{"name": "drift", "drift": {"method": "psi", "max": 0.2}}],
    },
    "today: PSI per look, every 10s": {
        "interval": "10s",
        "window": "10s",
        "checks": [{"name": "drift", "drift": {"method": "psi", "max": 0.2}}],
    },
    # Argo/Flagger style: the PSI of the last minute, per look
    "threshold per look, every 30s": {"interval": "30s", "checks": [DRIFT_THRESHOLD]},
}


NULL_CANARIES = ("healthy", "at the limit", "both flooded")
"""Canaries that must not be rolled back: every rollback of theirs is false (run as often as
healthy ones, since their rate is the bound to check)."""

# --limits: the absolute error-rate ceiling alone (max 0.05).
LIMIT_CANARIES = {
    "healthy": Canary(),  # 1% errors
    "at the limit": Canary(canary_errors=0.05),  # any rollback is false (H0: rate <= max)
    "2x the limit": Canary(canary_errors=0.10),
}


def _max_check(name: str, kind: str, method: str, interval: str) -> dict[str, Any]:
    """One check with ``max: 0.05`` judged by ``limitMethod`` ``method``, every ``interval``
    (at 10s, the window grows from the step's start as in the other studies)."""
    check = {"name": name, kind: {"max": 0.05, "limitMethod": method}}
    window = {"window": interval} if interval == "10s" else {}
    return {"interval": interval, **window, "checks": [check]}


def _limit(method: str, interval: str) -> dict[str, Any]:
    return _max_check("error-max", "errorRate", method, interval)


LIMIT_METHODS: dict[str, dict[str, Any]] = {
    "confidence sequence, every 10s": _limit("sequential", "10s"),
    "today: Wilson per look, every 30s": _limit("perLook", "30s"),
    "today: Wilson per look, every 10s": _limit("perLook", "10s"),
}

# --saturation: the saturation check alone (max 0.05): requests refused for load (503/504),
# stable refusing 1%; "both flooded": the cluster, not the canary, so any rollback is false.
SATURATION_CANARIES = {
    "healthy": Canary(canary_refused=0.01, stable_refused=0.01),
    "at the limit": Canary(canary_refused=0.05, stable_refused=0.01),
    "2x the limit": Canary(canary_refused=0.10, stable_refused=0.01),
    "both flooded": Canary(canary_refused=0.10, stable_refused=0.10),
}


def _saturation(method: str, interval: str) -> dict[str, Any]:
    return _max_check("saturation", "saturation", method, interval)


SATURATION_METHODS: dict[str, dict[str, Any]] = {
    "confidence sequence, every 10s": _saturation("sequential", "10s"),
    "Wilson per look, every 30s": _saturation("perLook", "30s"),
}


@dataclass(frozen=True)
class Study:
    """One table: its methods (analysis settings), canaries, and the seeds' offset (each
    study keeps its own seeds, so adding one leaves the others' numbers unchanged)."""

    methods: dict[str, dict[str, Any]]
    canaries: dict[str, Canary]
    seed_offset: int


STUDIES = {
    "latency": Study(LATENCY_METHODS, LATENCY_CANARIES, 1000),
    "drift": Study(DRIFT_METHODS, DRIFT_CANARIES, 2000),
    "limits": Study(LIMIT_METHODS, LIMIT_CANARIES, 3000),
    "saturation": Study(SATURATION_METHODS, SATURATION_CANARIES, 4000),
}


def _checks(method: str) -> list[dict[str, Any]]:
    if method == "threshold":  # a point value per look over the last window, as Argo/Flagger
        return [
            {"name": "error-rate", "promql": {"query": "errors", "maxRatio": 1.5}},
            {"name": "accuracy", "promql": {"query": "accuracy drop", "max": 0.02}},
        ]
    # Today's accuracy comparison was Fisher at quality.confidence (0.95) per look.
    accuracy = (
        {"method": method} if method == "sequential" else {"method": method, "confidence": 0.95}
    )
    return [
        {"name": "error-rate", "errorRate": {"max": 0.05, "vsStable": {"method": method}}},
        {"name": "accuracy", "quality": {"vsStable": accuracy}},
    ]


METHODS: dict[str, dict[str, Any]] = {
    # The sequential test may look at every scrape; its window grows from the step's start.
    "sequential, every 10s": {"interval": "10s", "window": "10s"},
    "today: Fisher, fixed looks, every 30s": {"interval": "30s"},
    "threshold per look, every 30s": {"interval": "30s"},
}


def spec_of(method: str, pause: str | None = None, study: str = "counts") -> ModelDeploymentSpec:
    """The default steps (10%, 50%), each ``pause`` long (default 1m), judged by ``method``."""
    steps = [{"weight": w, **({"pause": pause} if pause else {})} for w in (10, 50)]
    if study in STUDIES:
        return default_spec(steps=steps, analysis=STUDIES[study].methods[method])
    test = {"sequential, every 10s": "sequential", "threshold per look, every 30s": "threshold"}
    checks = _checks(test.get(method, "fixedLooks"))
    return default_spec(steps=steps, analysis={**METHODS[method], "checks": checks})


@dataclass(frozen=True)
class Cell:
    method: str
    rps: int
    canary: str
    runs: int
    seed: int
    pause: str | None = None
    study: str = "counts"
    """``counts`` (errors and accuracy, two checks) or one of ``STUDIES`` (one check)."""


def run_cell(cell: Cell) -> tuple[Cell, list[Outcome]]:
    spec = spec_of(cell.method, cell.pause, cell.study)
    canary = (STUDIES[cell.study].canaries if cell.study in STUDIES else CANARIES)[cell.canary]
    return cell, outcomes(spec, cell.rps, canary, cell.runs, cell.seed)


def _rate(hits: int, runs: int) -> str:
    low, _ = wilson_bounds(hits, runs, 0.975)
    _, high = wilson_bounds(hits, runs, 0.975)
    return f"{100 * hits / runs:.1f}% [{100 * low:.1f}-{100 * high:.1f}]"


def row(cell: Cell, ends: Sequence[Outcome]) -> str:
    back = [o for o in ends if o.outcome == "RolledBack"]
    held = sum(o.outcome == "Paused" for o in ends)
    one_check = cell.study in STUDIES
    if cell.canary == "healthy" and not one_check:  # every rollback is false; by which check
        by = {n: sum(o.check == n for o in back) for n in ("error-rate", "accuracy")}
        split = ", ".join(f"{n} {_rate(k, cell.runs)}" for n, k in by.items())
        return (
            f"| {cell.method} | {cell.rps} | {cell.canary} | {cell.runs} "
            f"| {_rate(len(back), cell.runs)} ({split}) | | {held} |"
        )
    if cell.canary == "healthy":
        return (
            f"| {cell.method} | {cell.rps} | {cell.canary} | {cell.runs} "
            f"| {_rate(len(back), cell.runs)} | | {held} |"
        )
    # The other studies have one check: any rollback is its.
    caught = back if one_check else [o for o in back if o.check == DECIDING[cell.canary]]
    seconds = [o.seconds for o in caught if o.seconds is not None]
    median = f"{statistics.median(seconds):.0f}s" if seconds else "-"
    return (
        f"| {cell.method} | {cell.rps} | {cell.canary} | {cell.runs} "
        f"| {_rate(len(caught), cell.runs)} | {median} | {held} |"
    )


def cells(
    healthy_runs: int,
    worse_runs: int,
    pause: str | None = None,
    study: str = "counts",
    at_limit_runs: int | None = None,
) -> list[Cell]:
    """``at_limit_runs``: runs per "at the limit" cell (default ``healthy_runs``). Those
    canaries run until the inconclusive budget holds them (ten minutes, 60 looks), five times
    a healthy rollout's cost, so a large healthy count may need a smaller one there."""
    one = STUDIES.get(study)
    runs = dict.fromkeys(NULL_CANARIES, healthy_runs)
    if at_limit_runs:
        runs["at the limit"] = at_limit_runs
    methods, canaries, offset = (
        (one.methods, one.canaries, one.seed_offset) if one else (METHODS, CANARIES, 0)
    )
    return [
        Cell(
            method,
            rps,
            canary,
            runs.get(canary, worse_runs),
            seed + offset,
            pause,
            study,
        )
        for seed, (method, rps, canary) in enumerate(
            (m, r, c) for m in methods for r in RPS for c in canaries
        )
    ]


def ceiling_power(
    rps: int, seconds: float, pause: float = 60.0, alpha: float = 0.025, sims: int = 200_000
) -> float:
    """The power of the best test there is, against errors x2, on the data of the default
    rollout's first ``seconds`` (10% for ``pause``, then 50%): the Neyman-Pearson test of
    "canary errs like stable" against exactly "twice as often", told the alternative and
    looking once, at level ``alpha``. No test valid at every look, and not knowing the
    alternative, can do better on the same data."""
    rng = np.random.default_rng(0)
    phases = [(0.1, min(seconds, pause))] + ([(0.5, seconds - pause)] if seconds > pause else [])
    llr = {1.0: np.zeros(sims), 2.0: np.zeros(sims)}
    for weight, duration in phases:
        n_c, n_s = rps * weight * duration, rps * (1 - weight) * duration
        null, worse = n_c / (n_c + n_s), 2 * n_c / (2 * n_c + n_s)
        hit, miss = np.log(worse / null), np.log((1 - worse) / (1 - null))
        for factor, sums in llr.items():  # canary and stable errors: Poisson, stable at 1%
            sums += rng.poisson(n_c * 0.01 * factor, sims) * hit
            sums += rng.poisson(n_s * 0.01, sims) * miss
    critical = np.quantile(llr[1.0], 1 - alpha)
    return float(np.mean(llr[2.0] > critical))


def print_ceiling() -> None:
    """--ceiling: the best test's power against errors x2, by traffic and time."""
    times = (60, 75, 90, 120)
    print("| req/s | " + " | ".join(f"data of the first {t}s" for t in times) + " |")
    print("|---|" + "---|" * len(times))
    for rps in RPS:
        print(f"| {rps} | " + " | ".join(f"{ceiling_power(rps, t):.1%}" for t in times) + " |")
    print(f"\n100 req/s, two-minute steps, all 240s: {ceiling_power(100, 240, pause=120):.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="3000 healthy, 1000 worse runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pause", help="each step's pause instead of the default 1m, e.g. 2m")
    parser.add_argument("--latency", action="store_true", help="the latency check's study")
    parser.add_argument("--drift", action="store_true", help="the drift check's study")
    parser.add_argument("--limits", action="store_true", help="the absolute error-rate limit")
    parser.add_argument("--saturation", action="store_true", help="requests refused for load")
    parser.add_argument("--runs", type=int, nargs=2, metavar=("HEALTHY", "WORSE"))
    parser.add_argument(
        "--at-limit-runs", type=int, help="--limits: runs per at-the-limit cell (default HEALTHY)"
    )
    parser.add_argument("--only", default="", help="only the methods whose name has this")
    parser.add_argument(
        "--rps", type=int, nargs="+", help="only these request rates (cells keep their seeds)"
    )
    parser.add_argument("--ceiling", action="store_true", help="the best test's power, errors x2")
    parser.add_argument(
        "--all", action="store_true", help="every table of docs/analysis.md, at its run counts"
    )
    args = parser.parse_args()
    if args.ceiling:
        print_ceiling()
        return
    if args.all:
        for study, (healthy, worse, at_limit) in PUBLISHED.items():
            print(f"\n{study}: {healthy} healthy, {worse} worse runs a cell\n")
            every = cells(healthy, worse, args.pause, study, at_limit)
            print_table(every, args.workers, args.only, args.rps)
        print()
        print_ceiling()
        return
    study = next((name for name in STUDIES if getattr(args, name)), "counts")
    healthy, worse = args.runs or ((3000, 1000) if args.full else (300, 100))
    every = cells(healthy, worse, args.pause, study, args.at_limit_runs)
    print_table(every, args.workers, args.only, args.rps)


PUBLISHED = {
    "counts": (3000, 1000, None),
    "latency": (3000, 1000, None),
    "drift": (3000, 1000, None),
    "limits": (3000, 100, 200),
    "saturation": (3000, 1000, 200),
}
"""--all: each table's runs (healthy, worse, at the limit), as docs/analysis.md publishes them."""


def print_table(every: list[Cell], workers: int, only: str, rps: list[int] | None) -> None:
    print("| method | req/s | canary | runs | rolled back (95% CI) | median detect time | held |")
    print("|---|---|---|---|---|---|---|")
    todo = [c for c in every if only in c.method and c.rps in (rps or RPS)]
    with ProcessPoolExecutor(workers) as pool:
        for cell, ends in pool.map(run_cell, todo):
            print(row(cell, ends), flush=True)


if __name__ == "__main__":
    main()
