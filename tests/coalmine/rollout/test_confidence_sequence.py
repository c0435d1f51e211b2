"""Absolute limits at any number of looks: ``stats.confidence_sequence`` and ``limitMethod``.

The coverage is checked by simulation: a rate followed look after look stays inside its
bounds at every look in at least ``confidence`` of the runs, where Wilson's bounds, which hold
at one look, do not. Whole rollouts: ``bench/power.py --limits`` and docs/analysis.md.
"""

from __future__ import annotations

import numpy as np
import pytest

from coalmine.api.checks import Check
from coalmine.rollout.judge import judge
from coalmine.rollout.policy import judge_all
from coalmine.rollout.stats import binomial_worse_e_value, confidence_sequence, wilson_bounds
from coalmine.rollout.types import Measurement, SideMeasurement
from coalmine.rollout.verdicts import Judging, limit_bounds

from .sim import spec_for

LOOKS = [50 * 2**k for k in range(8)] + [50 * 128 + 2000 * k for k in range(1, 13)]
"""20 looks from n = 50 to n = 30,400: doubling first, then every 2000 requests."""


def _misses(bounds, p: float, runs: int, seed: int) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Runs in which ``p`` was ever below the lower bound, and ever above the upper one."""
    rng = np.random.default_rng(seed)
    below = above = 0
    for _ in range(runs):
        hits = np.cumsum(rng.random(LOOKS[-1]) < p)
        lows, highs = zip(*(bounds(int(hits[n - 1]), n) for n in LOOKS), strict=True)
        below += max(lows) > p
        above += min(highs) < p
    return below, above


def test_the_sequence_covers_the_rate_at_every_look_at_once() -> None:
    below, above = _misses(lambda k, n: confidence_sequence(k, n, 0.9), 0.05, runs=200, seed=3)

    for misses in (below, above):  # each one-sided bound misses in at most 10% of runs
        _, high = wilson_bounds(misses, 200, 0.99)
        assert misses / 200 <= 0.1 and high <= 0.1 + 0.06, (below, above)


def test_wilson_bounds_checked_at_every_look_miss_more_often_than_they_say() -> None:
    """What the sequence fixes: Wilson's 90% bounds, looked at 20 times, miss well above 10%."""
    below, above = _misses(lambda k, n: wilson_bounds(k, n, 0.9), 0.05, runs=200, seed=3)

    low, _ = wilson_bounds(below + above, 400, 0.99)
    assert low > 0.1, (below, above)


def test_the_test_at_the_limit_has_mean_at_most_one() -> None:
    """The e-value the bound inverts: at p = p0 its mean over many samples is at most 1."""
    rng = np.random.default_rng(4)
    values = [binomial_worse_e_value(int(k), 500, 0.05) for k in rng.binomial(500, 0.05, 20000)]
    mean, sd = float(np.mean(values)), float(np.std(values))
    assert mean <= 1 + 3 * sd / np.sqrt(len(values)), mean


def test_the_bounds_are_wider_than_wilson_s_and_hold_the_estimate() -> None:
    for hits, n in [(0, 100), (5, 100), (50, 1000), (500, 10_000), (999, 1000)]:
        low, high = confidence_sequence(hits, n, 0.95)
        w_low, w_high = wilson_bounds(hits, n, 0.95)
        assert low <= w_low <= hits / n <= w_high <= high


J = Judging(min_samples=50, steps=2)


def _errors(errors: int, n: int) -> Measurement:
    return Measurement("e", SideMeasurement(samples=n, errors=errors))


def error_max(method: str = "sequential") -> Check:
    return Check.model_validate({"name": "e", "errorRate": {"max": 0.05, "limitMethod": method}})


def test_a_rate_above_max_fails_only_when_the_sequence_says_so() -> None:
    # 70/1000 is above 0.05 by Wilson's bound (0.057) but not by the sequence's (0.049)
    assert wilson_bounds(70, 1000, 0.95)[0] > 0.05
    assert limit_bounds(70, 1000, 0.95, J, "sequential")[0] < 0.05

    assert judge(error_max("perLook"), _errors(70, 1000), J).verdict == "fail"
    waiting = judge(error_max(), _errors(70, 1000), J)
    assert waiting.verdict == "inconclusive"
    assert waiting.reason.startswith("error rate 0.07 above max, but only (70/1000, lower bound")

    failed = judge(error_max(), _errors(100, 1000), J)
    assert failed.verdict == "fail" and "> max 0.05 (100/1000, lower bound 0.0" in failed.reason


def test_the_confidence_is_split_over_the_steps() -> None:
    one, two = Judging(min_samples=1), Judging(min_samples=1, steps=2)
    assert limit_bounds(70, 1000, 0.95, two, "sequential") == pytest.approx(
        confidence_sequence(70, 1000, 0.975)
    )
    assert (
        limit_bounds(70, 1000, 0.95, one, "sequential")[0]
        > limit_bounds(70, 1000, 0.95, two, "sequential")[0]
    )
    spec = spec_for(
        "v2",
        canary={
            "steps": [{"weight": 5}, {"weight": 20}, {"weight": 50}],
            "analysis": {"checks": [{"name": "e", "errorRate": {"max": 0.05}}]},
        },
    )
    # 3 steps: 95% over the rollout is 98.3% per step; 74/1000 is proven above 0.05 at 97.5%
    # (two steps), not at 98.3%
    three = Judging(min_samples=1, steps=3)
    assert limit_bounds(74, 1000, 0.95, three, "sequential")[0] < 0.05
    assert limit_bounds(74, 1000, 0.95, two, "sequential")[0] > 0.05
    (verdict,) = judge_all(spec.canary, [_errors(74, 1000)], step=0)
    assert verdict.verdict == "inconclusive"


def test_accuracy_min_passes_and_fails_on_the_sequence() -> None:
    check = Check.model_validate({"name": "q", "quality": {"min": 0.8}})

    def labelled(correct: int, n: int) -> Measurement:
        return Measurement("q", SideMeasurement(samples=n, correct=correct))

    passed = judge(check, labelled(900, 1000), J)
    assert passed.verdict == "pass" and passed.threshold == "lower bound >= 0.8"
    assert judge(check, labelled(700, 1000), J).verdict == "fail"
    unsure = judge(check, labelled(176, 200), J)  # Wilson's lower bound (0.837) would pass it
    assert unsure.verdict == "inconclusive" and "cannot tell yet against 0.8" in unsure.reason
