"""The sequential latency comparison with stable (``judge_latency``), checked by simulation:
valid at any number of looks, and able to catch a slower canary.

Requests are lognormal (``errorsim``: median 2 ms, sigma 0.6, p99 8 ms), counted in the
server's latency buckets; each look adds 100 canary and 900 stable requests (a 10% canary)
and judges the whole window so far, as the operator does within a step. Whole rollouts, at
three traffic levels, are in ``bench/power.py --latency`` and docs/analysis.md.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from coalmine.api import Check
from coalmine.rollout.judge import judge
from coalmine.rollout.stats import binomial_worse_e_value, wilson_bounds
from coalmine.rollout.types import Measurement, SideMeasurement
from coalmine.rollout.verdicts import Judging

from .errorsim import EDGES, Canary

ALPHA = 0.025  # the default confidence, 0.975: fail at e >= 40
JUDGING = Judging(min_samples=50)


def _side(counts: np.typing.NDArray[np.int64]) -> SideMeasurement:
    cumulative = tuple(zip(EDGES, np.cumsum(counts).astype(float).tolist(), strict=True))
    return SideMeasurement(value=0.01, samples=float(counts.sum()), latency_buckets=cumulative)


def _failed_runs(slowdown: float, max_ratio: float, runs: int, looks: int, seed: int) -> int:
    """Runs in which ``judge`` ever fails the canary (``slowdown`` x stable's latency)."""
    rng = np.random.default_rng(seed)
    check = Check.model_validate(
        {"name": "latency", "latency": {"quantile": 0.99, "vsStable": {"maxRatio": max_ratio}}}
    )
    canary_shares = Canary().latency_shares(slowdown)
    stable_shares = Canary().latency_shares(1.0)
    failed = 0
    for _ in range(runs):
        canary = np.zeros(len(EDGES), dtype=np.int64)
        stable = np.zeros(len(EDGES), dtype=np.int64)
        for _ in range(looks):
            canary += rng.multinomial(100, canary_shares)
            stable += rng.multinomial(900, stable_shares)
            m = Measurement("latency", _side(canary), _side(stable))
            if judge(check, m, JUDGING).verdict == "fail":
                failed += 1
                break
    return failed


def test_the_one_sample_e_process_at_its_null_looked_at_100_times_crosses_at_most_alpha() -> None:
    """The worst case the test allows: exactly 1 - q = 1% of the canary's requests above the
    boundary. Ville's inequality, checked over 100 looks (upper 99% bound plus the noise)."""
    rng = np.random.default_rng(11)
    runs, crossed = 600, 0
    for _ in range(runs):
        slow = np.cumsum(rng.binomial(100, 0.01, size=100))
        if any(
            binomial_worse_e_value(int(x), 100 * (i + 1), 0.01) >= 1 / ALPHA
            for i, x in enumerate(slow)
        ):
            crossed += 1
    _, high = wilson_bounds(crossed, runs, 0.99)
    assert crossed / runs <= ALPHA and high <= ALPHA + 0.01, crossed


def test_a_healthy_canary_looked_at_100_times_is_failed_at_most_alpha() -> None:
    """Same latency on both sides, 100 looks: the boundary (1.5 x stable's p99 bucket edge)
    leaves the canary far fewer than 1% of its requests above it."""
    failed = _failed_runs(1.0, 1.5, runs=300, looks=100, seed=12)
    assert failed / 300 <= ALPHA, failed


def test_a_canary_three_times_slower_is_caught() -> None:
    assert _failed_runs(3.0, 1.5, runs=100, looks=30, seed=13) >= 95


def test_a_p99_fifty_percent_slower_is_caught_when_no_slowdown_is_allowed() -> None:
    """maxRatio 1: any slowdown is a regression. (With the default 1.5 a +50% canary is
    within the ratio the check allows, and is not failed: see docs/analysis.md.)"""
    assert _failed_runs(1.5, 1.0, runs=100, looks=100, seed=14) >= 95


def test_a_p99_fifty_percent_slower_is_within_the_default_ratio() -> None:
    assert _failed_runs(1.5, 1.5, runs=100, looks=30, seed=15) <= 100 * ALPHA


def test_evidence_from_earlier_steps_is_carried() -> None:
    """A little evidence in this step fails the canary when the earlier steps carried some."""
    check = Check.model_validate({"name": "latency", "latency": {"vsStable": {}}})
    # stable's p99 is in the 7.5-10 ms bucket: 45 of its 9000 requests are above 10 ms, 10 of
    # the canary's 1000 above 15 ms (1% vs 0.5%: e about 3, far from 40 on its own)
    canary = np.array([0] * 6 + [980, 10, 10] + [0] * (len(EDGES) - 9), dtype=np.int64)
    stable = np.array([0] * 6 + [8955, 36, 9] + [0] * (len(EDGES) - 9), dtype=np.int64)
    m = Measurement("latency", _side(canary), _side(stable))
    alone = judge(check, m, JUDGING)
    assert alone.verdict == "pass" and alone.e_value is not None and 1 < alone.e_value < 40
    carried = judge(check, m, replace(JUDGING, carried=40 / alone.e_value * 1.01))
    assert carried.verdict == "fail", carried.reason
