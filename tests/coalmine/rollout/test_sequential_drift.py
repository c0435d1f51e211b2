"""The sequential drift test (``stats.drift_e_value`` and ``method: sequential``).

Validity is checked by simulation: with canary and stable drawn from one distribution, the
e-value's mean stays at most 1 and, looked at after every batch, it crosses 1 / alpha at most
alpha of the time, whatever the traffic split and wherever the mixture is centred. Its power
through whole rollouts is in ``bench/power.py --drift`` and docs/analysis.md.
"""

from __future__ import annotations

import numpy as np
import pytest

from coalmine.api.checks import Check
from coalmine.rollout.judge import judge
from coalmine.rollout.policy import judge_all
from coalmine.rollout.stats import drift_e_value, psi, psi_noise, wilson_bounds
from coalmine.rollout.types import Measurement, SideMeasurement
from coalmine.rollout.verdicts import Judging

from .sim import spec_for

STABLE = np.array([0.4, 0.3, 0.2, 0.1])
DRIFTED = np.array([0.22, 0.28, 0.25, 0.25])  # PSI 0.26 against STABLE
J = Judging(min_samples=50, share=0.1)
SEQUENTIAL = Check.model_validate({"name": "d", "drift": {"max": 0.2}})


def _crossings(
    canary: np.typing.NDArray[np.float64], share: float, prior: float, runs: int, seed: int
) -> int:
    """Runs in which the e-value ever reaches 100 (alpha 0.01) in 100 looks, each after a
    batch of 200 requests split ``share`` to the canary (binomially, as a router does)."""
    rng = np.random.default_rng(seed)
    crossed = 0
    for _ in range(runs):
        c, s = np.zeros(4), np.zeros(4)
        for _look in range(100):
            n_c = int(rng.binomial(200, share))
            c += rng.multinomial(n_c, canary)
            s += rng.multinomial(200 - n_c, STABLE)
            if drift_e_value(c, s, prior) >= 100:
                crossed += 1
                break
    return crossed


@pytest.mark.parametrize(("share", "prior"), [(0.1, 0.1), (0.5, 0.5), (0.2, 0.1)])
def test_no_drift_looked_at_100_times_crosses_at_most_alpha(share: float, prior: float) -> None:
    """Ville's inequality, checked, also with the mixture centred on the wrong share (a
    replicas router applying 20% for a 10% step)."""
    crossed = _crossings(STABLE, share, prior, runs=300, seed=11)
    _, high = wilson_bounds(crossed, 300, 0.99)
    assert crossed / 300 <= 0.01 and high <= 0.01 + 0.02, crossed


def test_the_e_value_of_no_drift_has_mean_at_most_one() -> None:
    rng = np.random.default_rng(5)
    values = []
    for _ in range(4000):
        n_c = int(rng.binomial(300, 0.1))
        values.append(
            drift_e_value(rng.multinomial(n_c, STABLE), rng.multinomial(300 - n_c, STABLE), 0.1)
        )
    mean, sd = float(np.mean(values)), float(np.std(values))
    assert mean <= 1 + 3 * sd / np.sqrt(len(values)), mean


def test_a_psi_of_a_quarter_is_found() -> None:
    assert _crossings(DRIFTED, 0.1, 0.1, runs=50, seed=12) >= 48


def _drift(canary: list[float], stable: list[float]) -> Measurement:
    def side(counts: list[float]) -> SideMeasurement:
        return SideMeasurement(distribution=tuple(zip("abcd", counts, strict=False)))

    return Measurement("d", side(canary), side(stable))


def test_a_large_certain_drift_fails_showing_psi_and_e() -> None:
    canary, stable = [220.0, 280, 250, 250], [3600.0, 2700, 1800, 900]

    verdict = judge(SEQUENTIAL, _drift(canary, stable), J)

    assert verdict.verdict == "fail" and verdict.value == pytest.approx(psi(canary, stable))
    assert verdict.reason.startswith("PSI 0.2") and ", e=" in verdict.reason
    assert verdict.threshold == "psi beyond noise <= 0.2 or e < 100"
    assert verdict.e_value is not None and verdict.e_value > 1e6


def test_a_certain_but_small_drift_passes() -> None:
    """PSI 0.01 over a million requests is certain (e huge) and harmless: the floor holds it."""
    canary, stable = [100_000.0, 100_000], [440_000.0, 360_000]

    verdict = judge(SEQUENTIAL, _drift(canary, stable), J)

    assert psi(canary, stable) < 0.02
    assert verdict.verdict == "pass" and verdict.e_value is not None and verdict.e_value > 1e6


def test_a_large_drift_not_yet_certain_is_inconclusive_and_keeps_its_evidence() -> None:
    canary, stable = [8.0, 10, 16, 26], [40.0, 30, 20, 10]

    verdict = judge(SEQUENTIAL, _drift(canary, stable), J)

    assert psi(canary, stable) - psi_noise(canary, stable) > 0.2
    assert verdict.verdict == "inconclusive" and "not yet significant" in verdict.reason
    assert verdict.e_value is not None and verdict.e_value < 100


def test_evidence_carried_from_the_earlier_step_decides() -> None:
    canary, stable = [8.0, 10, 16, 26], [40.0, 30, 20, 10]
    e = drift_e_value(canary, stable, 0.1)

    carried = Judging(min_samples=50, share=0.1, carried=200 / e)

    assert judge(SEQUENTIAL, _drift(canary, stable), carried).verdict == "fail"


def test_a_small_sample_s_noise_is_not_taken_for_a_large_drift() -> None:
    """PSI 0.55 on 60 predictions in four bins is 0.08 of noise and 0.47 of drift; on ten bins
    the noise of a 60-value sample alone is 0.17."""
    canary, stable = [10.0, 10, 20, 20], [40.0, 30, 20, 10]
    assert psi_noise(canary, stable) == pytest.approx(3 * (1 / 60 + 1 / 100))
    assert psi_noise([6.0] * 10, [100.0] * 10) == pytest.approx(9 * (1 / 60 + 1 / 1000))
    verdict = judge(SEQUENTIAL, _drift(canary, stable), J)
    assert "psi 0.6317 (0.5517 beyond noise)" in verdict.reason.lower()


def test_too_few_predictions_are_inconclusive() -> None:
    verdict = judge(SEQUENTIAL, _drift([10.0, 10], [500.0, 500]), J)
    assert verdict.verdict == "inconclusive" and "canary has 20 predictions" in verdict.reason


INPUTS = [
    {"name": "x", "index": 0, "edges": [1.0, 2.0, 3.0]},
    {"name": "y", "index": 1, "edges": [1.0, 2.0, 3.0]},
]


def _inputs(x: list[float], y: list[float]) -> Measurement:
    def buckets(counts: list[float]) -> tuple[tuple[str, float], ...]:
        return tuple(zip(("1.0", "2.0", "3.0", "+Inf"), counts, strict=True))

    stable = [3600.0, 2700, 1800, 900]
    return Measurement(
        "d",
        SideMeasurement(features=(("x", buckets(x)), ("y", buckets(y)))),
        SideMeasurement(features=(("x", buckets(stable)), ("y", buckets(stable)))),
    )


def test_input_features_each_need_k_over_alpha_and_the_check_carries_their_mean() -> None:
    check = Check.model_validate({"name": "d", "drift": {"max": 0.2, "inputs": INPUTS}})
    same, moved = [400.0, 300, 200, 100], [220.0, 280, 250, 250]

    verdict = judge(check, _inputs(same, moved), J)

    e_x = drift_e_value(same, [3600, 2700, 1800, 900], 0.1)
    e_y = drift_e_value(moved, [3600, 2700, 1800, 900], 0.1)
    assert verdict.verdict == "fail" and verdict.feature == "y"
    assert verdict.threshold == "psi beyond noise <= 0.2 or e < 200, each feature"
    assert verdict.e_value == pytest.approx((e_x + e_y) / 2)


def test_the_mixture_is_centred_on_the_step_s_weight() -> None:
    """judge_all passes the step's target weight: the same counts give another e-value at the
    50% step than at the 10% step, and the verdict's e-value is the one at the step's share."""
    steps = [{"weight": 10}, {"weight": 50}]
    checks = [{"name": "d", "drift": {}}]
    spec = spec_for("v2", canary={"steps": steps, "analysis": {"checks": checks}})
    canary, stable = [8.0, 10, 16, 26], [40.0, 30, 20, 10]
    at_10 = judge_all(spec.canary, [_drift(canary, stable)], step=0)[0]
    at_50 = judge_all(spec.canary, [_drift(canary, stable)], step=1)[0]

    assert at_10.e_value == pytest.approx(drift_e_value(canary, stable, 0.1))
    assert at_50.e_value == pytest.approx(drift_e_value(canary, stable, 0.5))


def test_evidence_that_fell_to_zero_in_an_earlier_step_is_judged_not_divided_by() -> None:
    """A step whose e-value underflowed to 0 (a canary far closer to stable than the mixture
    expects) carries 0: the next step's verdict must still come out, with its own e-value."""
    canary, stable = [220.0, 280, 250, 250], [3600.0, 2700, 1800, 900]
    nothing = Judging(min_samples=50, share=0.1, carried=0.0)

    verdict = judge(SEQUENTIAL, _drift(canary, stable), nothing)

    # large, but no evidence left: it waits
    assert verdict.verdict == "inconclusive" and ", e=0: above 0.2" in verdict.reason
    assert verdict.e_value == pytest.approx(drift_e_value(canary, stable, 0.1))
    inputs = Check.model_validate({"name": "d", "drift": {"max": 0.2, "inputs": INPUTS}})
    assert judge(inputs, _inputs([400.0, 300, 200, 100], canary), nothing).verdict == "inconclusive"
