"""The shadow step in the engine, and the agreement check's verdicts (pure: no cluster)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from coalmine.api import CanaryStrategy
from coalmine.api.checks import AgreementCheck, Check, CheckKind
from coalmine.rollout import Measurement, SideMeasurement
from coalmine.rollout.judge import judge
from coalmine.rollout.verdicts import Judging

from .scenarios import applied_weights, canary_on, event_reasons, finished
from .sim import Sim

SHADOW_STEPS = [
    {"shadow": 100, "pause": "1m"},
    {"weight": 10, "pause": "1m"},
    {"weight": 30, "pause": "1m"},
]
AGREEMENT = [{"name": "agreement", "agreement": {"min": 0.9}}]
QUALITY = {"name": "accuracy", "quality": {"min": 0.5}}


def agreeing(agreed_share: float, compared: float = 400.0) -> Any:
    def measure(sim: Sim) -> tuple[Measurement, ...]:
        side = SideMeasurement(
            value=agreed_share, samples=compared, correct=agreed_share * compared
        )
        return (Measurement("agreement", side, None),)

    return measure


def _verdict(spec: dict[str, Any], canary: SideMeasurement, min_samples: int = 50) -> Any:
    check = Check.model_validate({"name": "agreement", "agreement": spec})
    return judge(check, Measurement("agreement", canary), Judging(min_samples=min_samples))


@pytest.mark.parametrize(
    ("agreed", "n", "verdict"),
    [
        (400, 400, "pass"),  # every row agrees: well above 0.9
        (200, 400, "fail"),  # half: far below
        (360, 400, "inconclusive"),  # exactly at the limit: neither side has evidence
        (50, 50, "pass"),  # 50 of 50 is already enough evidence at 95%
        (10, 10, "inconclusive"),  # below minSamples: no verdict on ten rows
        (0, 0, "inconclusive"),  # no data holds, never passes
    ],
)
def test_agreement_rate_is_judged_by_a_sequential_test_both_ways(
    agreed: int, n: int, verdict: str
) -> None:
    share = agreed / n if n else None
    judged = _verdict({"min": 0.9}, SideMeasurement(value=share, samples=n, correct=agreed))
    assert judged.verdict == verdict
    if n >= 50:
        assert f"({agreed}/{n} compared)" in judged.reason  # the record shows the numbers


def test_agreement_with_no_series_is_inconclusive_not_a_pass() -> None:
    judged = _verdict({"min": 0.9}, SideMeasurement(value=None, samples=None))
    assert judged.verdict == "inconclusive"


@pytest.mark.parametrize(("mean", "verdict"), [(0.05, "pass"), (0.5, "fail")])
def test_regressors_are_judged_on_the_mean_absolute_difference(mean: float, verdict: str) -> None:
    canary = SideMeasurement(value=mean, samples=200, correct=0)
    judged = _verdict({"maxMeanAbsDiff": 0.1}, canary)
    assert judged.verdict == verdict and judged.samples == 200


def test_a_shadow_step_mirrors_with_no_client_weight_then_moves_on_to_weighted_steps() -> None:
    sim = canary_on(measure=agreeing(1.0), steps=SHADOW_STEPS, checks=AGREEMENT)
    sim.run_until(lambda s: s.status.current_step == 1)
    shadow = [d for d in sim.decisions if d.status.current_step == 0 and d.canary is not None]
    assert shadow and all(d.canary_weight == 0 for d in shadow)  # never a client request
    # The canary has pods for the mirrored load (100%: as many as stable's 4) while stable
    # keeps all of its own, and the mirror names the canary's revision.
    assert all(d.canary.replicas == 4 and d.stable.replicas == 4 for d in shadow)  # type: ignore[union-attr]
    assert {d.mirror.share for d in shadow if d.mirror} == {100}
    assert {d.mirror.canary.version for d in shadow if d.mirror} == {"v2"}
    sim.run_until(finished)
    assert applied_weights(sim) == [0, 10, 30, 0]
    assert all(d.mirror is None for d in sim.decisions if d.status.current_step != 0)
    assert sim.status.history[-1].outcome == "Promoted"


def test_a_disagreeing_canary_is_rolled_back_at_the_shadow_step_mirror_off_first() -> None:
    sim = canary_on(measure=agreeing(0.5), steps=SHADOW_STEPS, checks=AGREEMENT)
    sim.run_until(finished)
    assert sim.status.history[-1].outcome == "RolledBack"
    assert all(d.canary_weight == 0 for d in sim.decisions)  # no client ever reached it
    rollback = next(i for i, d in enumerate(sim.decisions) if d.action == "RollBack")
    assert sim.decisions[rollback - 1].mirror is not None
    assert all(d.mirror is None for d in sim.decisions[rollback:])  # off with the rollback
    assert "RollingBack" in event_reasons(sim)
    record = sim.decisions[rollback].status.analysis
    assert record is not None
    agreement = next(c for c in record.checks if c.name == "agreement")
    assert agreement.samples == 400 and "agreement 0.5 (200/400 compared)" in agreement.reason


def test_no_comparisons_hold_the_shadow_step() -> None:
    sim = canary_on(measure=agreeing(0.0, compared=0.0), steps=SHADOW_STEPS, checks=AGREEMENT)
    for _ in range(40):
        sim.tick()
    assert sim.status.current_step == 0 and sim.status.canary is not None
    assert all(d.canary_weight == 0 for d in sim.decisions)


def _strategy(steps: list[dict[str, Any]], checks: list[dict[str, Any]]) -> CanaryStrategy:
    return CanaryStrategy.model_validate({"steps": steps, "analysis": {"checks": checks}})


def test_checks_at_a_shadow_step_leave_out_quality_and_weighted_steps_leave_out_agreement() -> None:
    strategy = _strategy(SHADOW_STEPS, [*AGREEMENT, QUALITY])
    assert [c.kind for c in strategy.checks_at(0)] == [CheckKind.AGREEMENT]
    assert [c.kind for c in strategy.checks_at(1)] == [CheckKind.QUALITY]


@pytest.mark.parametrize(
    ("steps", "checks", "message"),
    [
        ([{"shadow": 50, "weight": 10}], [], "or shadow (1-100) with weight 0"),
        ([{"pause": "1m"}], [], "a step sets weight (1-100)"),
        ([{"weight": 10}, {"shadow": 50}], [], "a shadow step, weight 0, can only be the first"),
        ([{"weight": 10}], AGREEMENT, "agreement: needs a shadow step"),
    ],
)
def test_invalid_shadow_specs_name_the_field(
    steps: list[dict[str, Any]], checks: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        _strategy(steps, checks)


def test_agreement_needs_exactly_one_limit() -> None:
    with pytest.raises(ValueError, match=re.escape("set min (classifiers) or maxMeanAbsDiff")):
        AgreementCheck.model_validate({"min": 0.9, "maxMeanAbsDiff": 1.0})
