"""The sequential comparison with stable, and the per-check ``dryRun`` and ``onFail``.

The e-value's validity is checked by simulation here (a healthy canary, looked at after every
batch, must cross 1 / alpha at most alpha of the time); its power, through whole rollouts,
is in ``bench/power.py`` and docs/analysis.md.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from coalmine.api import CheckStatus, Policy
from coalmine.rollout.judge import judge
from coalmine.rollout.policy import (
    MAX_CARRIED_EVIDENCE,
    Assessment,
    assess,
    carried_evidence,
    fold_analysis,
    judge_all,
)
from coalmine.rollout.stats import share_worse_e_value, wilson_bounds
from coalmine.rollout.types import Measurement, SideMeasurement
from coalmine.rollout.verdicts import CheckVerdict, Judging

from .sim import T0, Sim, spec_for, value_check, with_version


def _crossings(canary_rate: float, runs: int, looks: int, seed: int) -> int:
    """Runs in which the e-value ever reaches 40 (alpha 0.025), looking after every batch of
    100 canary and 900 stable requests (a 10% canary)."""
    rng = np.random.default_rng(seed)
    crossed = 0
    for _ in range(runs):
        e_c = e_s = 0
        for look in range(1, looks + 1):
            e_c += int(rng.binomial(100, canary_rate))
            e_s += int(rng.binomial(900, 0.02))
            if share_worse_e_value(e_c, 100 * look, e_s, 900 * look) >= 40:
                crossed += 1
                break
    return crossed


def test_a_healthy_canary_looked_at_100_times_crosses_at_most_alpha() -> None:
    """Ville's inequality, checked: 100 looks, not 1, and still <= 2.5% (upper 99% bound)."""
    crossed = _crossings(0.02, runs=600, looks=100, seed=7)
    _, high = wilson_bounds(crossed, 600, 0.99)
    assert high <= 0.025 + 0.01, crossed  # the bound plus the simulation's own noise
    assert crossed / 600 <= 0.025


def test_a_doubled_rate_is_found() -> None:
    assert _crossings(0.04, runs=100, looks=100, seed=8) >= 95


def test_a_better_canary_gives_no_evidence() -> None:
    assert share_worse_e_value(0, 1000, 100, 9000) < 0.1
    assert share_worse_e_value(5, 1000, 5, 1000) < 1


def error_check(method: str, **extra: object) -> dict[str, object]:
    return {"name": "errors", "errorRate": {"vsStable": {"method": method}}, **extra}


def measured(canary_errors: int, stable_errors: int) -> Measurement:
    return Measurement(
        "errors",
        SideMeasurement(samples=1000, errors=canary_errors),
        SideMeasurement(samples=9000, errors=stable_errors),
    )


@pytest.mark.parametrize(("errors", "verdict"), [(30, "fail"), (12, "pass"), (2, "pass")])
def test_the_sequential_verdict(errors: int, verdict: str) -> None:
    spec = spec_for(
        canary={"steps": [{"weight": 10}], "analysis": {"checks": [error_check("sequential")]}}
    )
    (check,) = spec.canary.analysis.checks
    result = judge(check, measured(errors, 90), Judging(min_samples=50))
    assert result.verdict == verdict, result.reason
    assert result.e_value is not None and "e=" in result.reason


def test_evidence_carries_over_steps() -> None:
    """Each step's e-value is its own; the check fails on their product."""
    spec = spec_for(
        canary={
            "steps": [{"weight": 10}, {"weight": 50}],
            "analysis": {"checks": [error_check("sequential")]},
        }
    )
    canary = spec.canary
    # 20 vs 90 errors for a 10% canary: e about 11, below 40 on its own.
    (first,) = judge_all(canary, [measured(20, 90)], None, 0)
    assert first.verdict == "pass" and first.e_value is not None and 5 < first.e_value < 40
    analysis = fold_analysis(None, [first], 0, 10, T0)
    (again,) = judge_all(canary, [measured(20, 90)], analysis, 1)  # the next step, as bad
    assert again.verdict == "fail", again.reason
    record = fold_analysis(analysis, [again], 1, 50, T0)
    assert record.checks[0].carried_e_value == pytest.approx(first.e_value)


def test_fixed_looks_is_todays_fisher() -> None:
    spec = spec_for(
        canary={"steps": [{"weight": 10}], "analysis": {"checks": [error_check("fixedLooks")]}}
    )
    (check,) = spec.canary.analysis.checks
    result = judge(check, measured(30, 90), Judging(min_samples=50, looks=4))
    assert result.verdict == "fail" and "p=" in result.reason and result.e_value is None


def _failing_rollout(**check: object) -> Sim:
    checks = [{"name": "custom", "promql": {"query": "x", "max": 1.0}, **check}]
    sim = Sim(spec_for(canary={"steps": [{"weight": 10}], "analysis": {"checks": checks}}))
    sim.healthy_on("v1")
    sim.spec = with_version(sim.spec, "v2")
    sim.measure = lambda s: value_check(2.0)  # fails every look
    return sim


def test_a_dry_run_check_is_recorded_and_never_acted_on() -> None:
    sim = _failing_rollout(dryRun=True)
    sim.run_until(lambda s: s.status.canary is None, limit=200)
    assert sim.status.history[-1].outcome == "Promoted"
    checks = [c for d in sim.decisions if d.status.analysis for c in d.status.analysis.checks]
    assert any(c.verdict == "fail" and c.dry_run and c.consecutive_failures >= 2 for c in checks)


def test_on_fail_pause_holds_for_a_person_and_retry_starts_afresh() -> None:
    sim = _failing_rollout(onFail="pause")
    sim.run_until(lambda s: s.status.phase == "Paused", limit=200)
    assert sim.status.rollback is None and sim.status.paused_by == "analysis"
    assert sim.decisions[-1].reason == "CheckFailed"
    assert "onFail is pause" in sim.status.message
    sim.run(3)
    assert sim.status.phase == "Paused" and sim.decisions[-1].reason == "CheckFailed"
    sim.measure = lambda s: value_check(0.5)
    sim.controls = replace(sim.controls, retry=True)
    sim.run_until(lambda s: s.status.canary is None, limit=200)
    assert sim.status.history[-1].outcome == "Promoted"


def test_a_rollback_outranks_a_pause() -> None:
    analysis = fold_analysis(None, [], 0, 10, T0)
    paused = CheckStatus(
        name="a", kind="promql", verdict="fail", consecutive_failures=2, on_fail="pause"
    )
    rolled = CheckStatus(name="b", kind="promql", verdict="fail", consecutive_failures=2)
    analysis = analysis.model_copy(update={"checks": [paused, rolled], "verdict": "fail"})
    judgement = assess(analysis, Policy(), T0)
    assert judgement.assessment == Assessment.ROLL_BACK and judgement.culprit == rolled
    alone = analysis.model_copy(update={"checks": [paused]})
    assert assess(alone, Policy(), T0).assessment == Assessment.PAUSE
    dry = analysis.model_copy(update={"checks": [rolled.model_copy(update={"dry_run": True})]})
    assert assess(dry, Policy(), T0).assessment != Assessment.ROLL_BACK


def test_a_dry_run_check_without_data_or_answers_starts_no_clock() -> None:
    """Its failing queries and missing data are recorded, but neither the provider-error nor
    the inconclusive budget runs out because of it: the acting check passes, so it promotes."""
    acting = CheckVerdict(name="errors", kind="errorRate", verdict="pass", value=0.0)
    failing = CheckVerdict(
        name="new-gate", kind="promql", verdict="inconclusive", dry_run=True, provider_error=True
    )
    no_data = CheckVerdict(name="newer-gate", kind="promql", verdict="inconclusive", dry_run=True)
    analysis, now = None, T0
    for look in range(30):  # 30 minutes of looks, past both 10-minute budgets
        now = T0 + timedelta(minutes=look)
        analysis = fold_analysis(analysis, [acting, failing, no_data], 0, 10, now)
    assert analysis is not None and analysis.verdict == "pass"
    assert analysis.provider_error_since is None and analysis.inconclusive_since is None
    assert [c.provider_error for c in analysis.checks] == [False, True, False]  # still shown
    assert assess(analysis, Policy(), now).assessment == Assessment.PASSING
    # The same failing query on an acting check does run the budget out.
    acting_failing = replace(failing, dry_run=False)
    analysis = None
    for look in range(30):
        now = T0 + timedelta(minutes=look)
        analysis = fold_analysis(analysis, [acting, acting_failing], 0, 10, now)
    assert assess(analysis, Policy(), now).assessment == Assessment.PROVIDER_ERROR_LIMIT


def test_carried_evidence_stays_finite_and_status_refuses_nonsense() -> None:
    huge = CheckStatus(
        name="e", kind="errorRate", verdict="fail", e_value=1e300, carried_e_value=1e300
    )
    assert carried_evidence(huge, same_step=False) == MAX_CARRIED_EVIDENCE
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValidationError):
            CheckStatus(name="e", kind="errorRate", verdict="pass", carried_e_value=bad)
