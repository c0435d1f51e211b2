"""Table-driven verdicts for every check kind: pass, fail, and every way to be inconclusive."""

from __future__ import annotations

import math

import pytest

from coalmine.api import Check
from coalmine.rollout import Measurement, SideMeasurement
from coalmine.rollout.judge import judge
from coalmine.rollout.verdicts import Judging

NAN, INF = math.nan, math.inf
J = Judging(min_samples=50, looks=4)


def check(**kind: object) -> Check:
    return Check.model_validate({"name": "c", **kind})


def side(**numbers: object) -> SideMeasurement:
    return SideMeasurement(**numbers)  # type: ignore[arg-type]


ERR_ABS = check(errorRate={"max": 0.05})
ERR_VS = check(errorRate={"vsStable": {}})
ERR_BOTH = check(errorRate={"max": 0.05, "vsStable": {}})
LAT = check(latency={"maxSeconds": 0.5, "vsStable": {"maxRatio": 1.5}})
ACC = check(quality={"min": 0.8, "minLabels": 100})
ACC_VS = check(quality={"vsStable": {"maxDegradation": 0.02}, "minLabels": 100})
MAE = check(quality={"metric": "meanAbsoluteError", "max": 2.0, "vsStable": {}, "minLabels": 100})
PSI = check(drift={"method": "psi", "max": 0.2})
CHI = check(drift={"method": "chiSquare", "max": 0.1})
PROM = check(promql={"query": "q", "min": 1, "max": 10, "maxRatio": 2})
SAT = check(saturation={"max": 0.05})

# Cumulative latency histograms (edge, requests at or below it): stable's p99 is in the
# 0.1-0.25 s bucket, so with maxRatio 1.5 a canary request is slow above 0.5 s.
STABLE_HIST = ((0.1, 0.0), (0.25, 891.0), (0.5, 900.0), (1.0, 900.0), (INF, 900.0))
CANARY_FAST = ((0.1, 0.0), (0.25, 99.0), (0.5, 100.0), (1.0, 100.0), (INF, 100.0))
CANARY_SLOW = ((0.1, 0.0), (0.25, 0.0), (0.5, 0.0), (1.0, 100.0), (INF, 100.0))
EMPTY_HIST = ((0.1, 0.0), (0.25, 0.0), (INF, 0.0))
STABLE_OFF_SCALE = ((0.1, 0.0), (10.0, 800.0), (INF, 900.0))

BALANCED = (("a", 500.0), ("b", 500.0))
SHIFTED = (("a", 800.0), ("b", 200.0))

CASES = [
    # id, check, canary, stable, verdict
    ("err-abs-pass", ERR_ABS, side(samples=1000, errors=10), None, "pass"),
    ("err-abs-fail", ERR_ABS, side(samples=1000, errors=200), None, "fail"),
    ("err-abs-noisy-small", ERR_ABS, side(samples=50, errors=3), None, "inconclusive"),
    ("err-abs-rate-only", ERR_ABS, side(samples=1000, value=0.2), None, "fail"),
    ("err-abs-nan-rate", ERR_ABS, side(samples=1000, value=NAN), None, "inconclusive"),
    ("err-abs-no-samples", ERR_ABS, side(samples=0, errors=0), None, "inconclusive"),
    ("err-abs-few-samples", ERR_ABS, side(samples=49, errors=0), None, "inconclusive"),
    ("err-abs-inf-samples", ERR_ABS, side(samples=INF, errors=0), None, "inconclusive"),
    ("err-abs-empty", ERR_ABS, side(), None, "inconclusive"),
    ("err-abs-provider-error", ERR_ABS, side(error="timeout"), None, "inconclusive"),
    ("err-vs-same", ERR_VS, side(samples=1000, errors=10), side(samples=9000, errors=90), "pass"),
    ("err-vs-worse", ERR_VS, side(samples=2000, errors=80), side(samples=9000, errors=90), "fail"),
    ("err-vs-tiny", ERR_VS, side(samples=60, errors=2), side(samples=9000, errors=90), "pass"),
    (
        "err-vs-under-floor",
        ERR_VS,
        side(samples=20000, errors=150),
        side(samples=90000, errors=90),
        "pass",
    ),
    ("err-vs-no-stable", ERR_VS, side(samples=1000, errors=10), None, "inconclusive"),
    (
        "err-vs-stable-error",
        ERR_VS,
        side(samples=1000, errors=10),
        side(error="503"),
        "inconclusive",
    ),
    (
        "err-vs-stable-few",
        ERR_VS,
        side(samples=1000, errors=10),
        side(samples=10, errors=0),
        "inconclusive",
    ),
    (
        "err-both-abs-fails",
        ERR_BOTH,
        side(samples=1000, errors=200),
        side(samples=9000, errors=90),
        "fail",
    ),
    (
        "lat-pass",
        LAT,
        side(value=0.2, samples=100, latency_buckets=CANARY_FAST),
        side(value=0.2, samples=900, latency_buckets=STABLE_HIST),
        "pass",
    ),
    ("lat-abs-fail", LAT, side(value=0.9, samples=100), side(value=0.8, samples=900), "fail"),
    (
        "lat-ratio-fail",
        LAT,
        side(value=0.45, samples=100, latency_buckets=CANARY_SLOW),
        side(value=0.2, samples=900, latency_buckets=STABLE_HIST),
        "fail",
    ),
    ("lat-nan", LAT, side(value=NAN, samples=100), side(value=0.1, samples=900), "inconclusive"),
    ("lat-inf", LAT, side(value=INF, samples=100), side(value=0.1, samples=900), "inconclusive"),
    (
        "lat-no-histogram",
        LAT,
        side(value=0.1, samples=100),
        side(value=0.1, samples=900, latency_buckets=STABLE_HIST),
        "inconclusive",
    ),
    (
        "lat-stable-empty",
        LAT,
        side(value=0.1, samples=100, latency_buckets=CANARY_FAST),
        side(value=0.0, samples=900, latency_buckets=EMPTY_HIST),
        "inconclusive",
    ),
    (
        "lat-stable-quantile-beyond-the-edges",
        LAT,
        side(value=0.1, samples=100, latency_buckets=CANARY_SLOW),
        side(value=10.0, samples=900, latency_buckets=STABLE_OFF_SCALE),
        "inconclusive",
    ),
    ("lat-no-samples", LAT, side(value=0.1), side(value=0.1, samples=900), "inconclusive"),
    ("acc-pass", ACC, side(samples=500, correct=450), None, "pass"),
    ("acc-fail", ACC, side(samples=500, correct=300), None, "fail"),
    ("acc-borderline", ACC, side(samples=120, correct=98), None, "inconclusive"),
    ("acc-few-labels", ACC, side(samples=99, correct=99), None, "inconclusive"),
    ("acc-nan", ACC, side(samples=500, value=NAN), None, "inconclusive"),
    (
        "acc-vs-pass",
        ACC_VS,
        side(samples=500, correct=450),
        side(samples=5000, correct=4550),
        "pass",
    ),
    (
        "acc-vs-fail",
        ACC_VS,
        side(samples=2000, correct=1600),
        side(samples=5000, correct=4500),
        "fail",
    ),
    (
        "acc-vs-unclear",
        ACC_VS,
        side(samples=100, correct=87),
        side(samples=5000, correct=4500),
        "inconclusive",
    ),
    ("mae-pass", MAE, side(samples=200, value=1.0), side(samples=200, value=1.0), "pass"),
    ("mae-abs-fail", MAE, side(samples=200, value=3.0), side(samples=200, value=2.9), "fail"),
    ("mae-vs-fail", MAE, side(samples=200, value=1.5), side(samples=200, value=1.0), "fail"),
    ("mae-inf", MAE, side(samples=200, value=INF), side(samples=200, value=1.0), "inconclusive"),
    ("psi-pass", PSI, side(distribution=BALANCED), side(distribution=BALANCED), "pass"),
    ("psi-fail", PSI, side(distribution=SHIFTED), side(distribution=BALANCED), "fail"),
    (
        "psi-new-class",
        PSI,
        side(distribution=(("a", 500.0), ("c", 500.0))),
        side(distribution=BALANCED),
        "fail",
    ),
    (
        "psi-few",
        PSI,
        side(distribution=(("a", 10.0),)),
        side(distribution=BALANCED),
        "inconclusive",
    ),
    (
        "psi-nan-count",
        PSI,
        side(distribution=(("a", NAN), ("b", 500.0))),
        side(distribution=BALANCED),
        "inconclusive",
    ),
    ("psi-empty", PSI, side(), side(distribution=BALANCED), "inconclusive"),
    ("chi-pass", CHI, side(distribution=BALANCED), side(distribution=BALANCED), "pass"),
    ("chi-fail", CHI, side(distribution=SHIFTED), side(distribution=BALANCED), "fail"),
    (
        "chi-tiny-shift-big-traffic",
        CHI,
        side(distribution=(("a", 51000.0), ("b", 49000.0))),
        side(distribution=(("a", 50000.0), ("b", 50000.0))),
        "pass",
    ),
    ("prom-pass", PROM, side(value=5.0), side(value=5.0), "pass"),
    ("prom-min-fail", PROM, side(value=0.5), side(value=5.0), "fail"),
    ("prom-max-fail", PROM, side(value=11.0), side(value=5.0), "fail"),
    ("prom-ratio-fail", PROM, side(value=9.0), side(value=2.0), "fail"),
    ("prom-nan", PROM, side(value=NAN), side(value=5.0), "inconclusive"),
    ("prom-empty", PROM, side(), side(value=5.0), "inconclusive"),
    ("prom-stable-missing", PROM, side(value=5.0), None, "inconclusive"),
    ("prom-few-samples", PROM, side(value=5.0, samples=3), side(value=5.0), "inconclusive"),
    ("sat-pass", SAT, side(samples=1000, errors=10), side(samples=9000, errors=0), "pass"),
    ("sat-fail", SAT, side(samples=1000, errors=300), side(samples=9000, errors=9), "fail"),
    ("sat-no-stable", SAT, side(samples=1000, errors=300), None, "fail"),
    (
        "sat-both-flooded",
        SAT,
        side(samples=1000, errors=300),
        side(samples=9000, errors=2700),
        "inconclusive",
    ),
    ("sat-noisy-small", SAT, side(samples=50, errors=4), side(samples=900), "inconclusive"),
    ("sat-few-samples", SAT, side(samples=20, errors=0), side(samples=900), "inconclusive"),
    ("sat-failed-query", SAT, side(error="timeout"), side(samples=900), "inconclusive"),
]


@pytest.mark.parametrize(
    ("the_check", "canary", "stable", "expected"),
    [pytest.param(c, cn, st, v, id=i) for i, c, cn, st, v in CASES],
)
def test_verdict(
    the_check: Check, canary: SideMeasurement, stable: SideMeasurement | None, expected: str
) -> None:
    verdict = judge(the_check, Measurement("c", canary, stable), J)
    assert verdict.verdict == expected, verdict.reason
    assert verdict.reason  # every verdict says why
    if expected != "inconclusive":
        assert verdict.threshold
        assert verdict.value is not None and math.isfinite(verdict.value)


def test_not_measured_is_inconclusive() -> None:
    assert judge(ERR_ABS, None, J).verdict == "inconclusive"


@pytest.mark.parametrize("the_check", [ERR_ABS, ERR_VS, LAT, ACC, PSI, PROM, SAT])
def test_a_stale_side_is_inconclusive_never_a_pass(the_check: Check) -> None:
    """The freshness guard: whatever numbers a kind would have seen, stale data decides none."""
    stale = side(stale="stale: last sample 95s ago (limit 90s)")
    good = side(samples=1000, errors=0, value=0.1, correct=1000, distribution=BALANCED)
    for canary, stable, which in ((stale, good, "canary"), (good, stale, "stable")):
        verdict = judge(the_check, Measurement("c", canary, stable), J)
        assert verdict.verdict == "inconclusive"
        assert verdict.reason == f"{which} stale: last sample 95s ago (limit 90s)"


def test_saturation_says_it_is_load_not_errors() -> None:
    canary, stable = side(samples=1000, errors=300), side(samples=9000, errors=9)
    verdict = judge(SAT, Measurement("c", canary, stable), J)
    assert verdict.reason == "saturation 0.3 > max 0.05 (300/1000 refused for load)"
    flooded = judge(SAT, Measurement("c", canary, side(samples=9000, errors=2700)), J)
    assert "but stable too (0.3): overload" in flooded.reason


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_non_finite_never_passes_any_kind(bad: float) -> None:
    """``NaN > max`` is False: a rule written as a comparison would pass it. Ours never does."""
    for the_check in (ERR_ABS, ERR_VS, LAT, ACC, MAE, PROM):
        for canary in (side(value=bad, samples=1000), side(value=0.1, samples=bad)):
            stable = side(value=0.1, samples=1000, errors=10, correct=900)
            verdict = judge(the_check, Measurement("c", canary, stable), J)
            assert verdict.verdict == "inconclusive", (the_check.kind, canary, verdict)


def test_failure_reason_names_the_numbers() -> None:
    verdict = judge(ERR_ABS, Measurement("c", side(samples=1000, errors=200)), J)
    assert "0.2" in verdict.reason and "0.05" in verdict.reason and "200/1000" in verdict.reason
    assert verdict.samples == 1000 and verdict.threshold == "<= 0.05"


def test_check_min_samples_overrides_policy() -> None:
    strict = check(errorRate={"max": 0.05}, minSamples=5000)
    verdict = judge(strict, Measurement("c", side(samples=1000, errors=0)), J)
    assert verdict.verdict == "inconclusive" and "5000" in verdict.reason
