"""A canary serving at a step: measure, judge, then advance, hold, pause or roll back.

A step advances only on a measurement taken after its pause elapsed in which every check
passed; a failing check rolls back at its failure limit; inconclusive analysis past its
budget pauses or rolls back per policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from coalmine.api.status import AnalysisStatus, CheckStatus
from coalmine.rollout.plans import hold, stay
from coalmine.rollout.policy import (
    CHECK_FAILED,
    Assessment,
    assess,
    fold_analysis,
    judge_all,
    measurement_due,
)
from coalmine.rollout.promotion import promote
from coalmine.rollout.rollback import start_rollback
from coalmine.rollout.tick import WAIT_FOR_OBSERVATION, Plan, Tick, normal, update
from coalmine.rollout.types import Action


def analyse(t: Tick) -> Plan:
    """Fold this tick's measurements, then act on what the analysis asks."""
    t, wants = fold_measurements(t)
    judgement = assess(t.status.analysis, t.spec.canary.policy, t.now)
    act = _ON_ASSESSMENT.get(judgement.assessment)
    if judgement.assessment == Assessment.ROLL_BACK:
        plan = _failed(t, judgement.culprit)
    elif judgement.assessment == Assessment.PAUSE:
        plan = _failed_pause(t, judgement.culprit)
    elif act is not None:
        plan = act(t)
    else:
        plan = _passing_or_hold(t, judgement.assessment == Assessment.PASSING)
    return replace(plan, wants_measurement=wants)


def fold_measurements(t: Tick) -> tuple[Tick, bool]:
    """The tick with this tick's measurements folded into ``status.analysis`` when one is due;
    and whether one was due but not offered (the operator then measures and decides again)."""
    status, canary = t.status, t.spec.canary
    step = status.current_step or 0
    if not measurement_due(status.analysis, step, canary.analysis.interval, t.now):
        return t, False
    if t.obs.measurements is None:
        return t, True
    verdicts = judge_all(canary, t.obs.measurements, status.analysis, step)
    record = fold_analysis(status.analysis, verdicts, step, status.weight, t.now)
    return t.with_status(update(status, analysis=record)), False


def watch_paused(t: Tick) -> Plan:
    """Held by analysis: measurements go on at the held weight, and a failing check still
    rolls back. Checks passing again do not resume by themselves: the pause told a person
    something was wrong, and the retry control (a fresh step pause) is theirs to give."""
    t, wants = fold_measurements(t)
    judgement = assess(t.status.analysis, t.spec.canary.policy, t.now)
    if judgement.assessment == Assessment.ROLL_BACK:
        return replace(_failed(t, judgement.culprit), wants_measurement=wants)
    analysis = t.status.analysis
    message = t.status.message
    if analysis is not None and analysis.verdict == "pass" and analysis.measured_at == t.now:
        message = f"paused by analysis; checks pass again: {RESUME_HINT}"
    plan = hold(t, by="analysis", reason=paused_reason(analysis), message=message)
    return replace(plan, wants_measurement=wants)


RESUME_HINT = "set coalmine.dev/retry to resume"


def paused_reason(analysis: AnalysisStatus | None) -> str:
    """Why analysis holds the canary: a check with ``onFail: pause`` failing, Prometheus
    failing, or Prometheus answering without evidence."""
    checks = analysis.checks if analysis is not None else []
    if any(c.on_fail == "pause" and c.consecutive_failures and not c.dry_run for c in checks):
        return CHECK_FAILED
    failing = analysis is not None and analysis.provider_error_since is not None
    return "AnalysisError" if failing else "InconclusiveAnalysis"


def _failed(t: Tick, culprit: CheckStatus | None) -> Plan:
    assert culprit is not None
    return start_rollback(t, "RolledBack", "AnalysisFailed", _why_failed(culprit), culprit)


def _failed_pause(t: Tick, culprit: CheckStatus | None) -> Plan:
    """``onFail: pause``: the same hold as inconclusive analysis, resumed by a person."""
    assert culprit is not None
    message = f"{_why_failed(culprit)}; onFail is pause: set coalmine.dev/retry to resume"
    return hold(t, by="analysis", reason=CHECK_FAILED, message=message)


def _why_failed(culprit: CheckStatus) -> str:
    return (
        f"check {culprit.name} failed {culprit.consecutive_failures} times in a row:"
        f" {culprit.reason} (threshold {culprit.threshold})"
    )


def _inconclusive_limit(t: Tick) -> Plan:
    limit = t.spec.canary.policy.inconclusive_limit
    return _give_up(t, "InconclusiveLimit", f"analysis inconclusive for {limit}")


def _provider_error_limit(t: Tick) -> Plan:
    policy = t.spec.canary.policy
    why = f"metrics provider failing for {policy.provider_error_limit}"
    return _give_up(t, "ProviderErrorLimit", why)


def _give_up(t: Tick, limit: str, why: str) -> Plan:
    """Past an analysis budget: ``onInconclusive`` says pause (watched) or roll back."""
    if t.spec.canary.policy.on_inconclusive == "rollback":
        return start_rollback(t, "RolledBack", limit, why)
    reason = "AnalysisError" if limit == "ProviderErrorLimit" else "InconclusiveAnalysis"
    return hold(t, by="analysis", reason=reason, message=f"{why}; {RESUME_HINT}")


_ON_ASSESSMENT: dict[Assessment, Callable[[Tick], Plan]] = {
    Assessment.INCONCLUSIVE_LIMIT: _inconclusive_limit,
    Assessment.PROVIDER_ERROR_LIMIT: _provider_error_limit,
}


def _passing_or_hold(t: Tick, passing: bool) -> Plan:
    """Advance when the pause elapsed and every check passed on this tick's measurement."""
    status = t.status
    assert status.step_started_at is not None
    pause_over = status.step_started_at + t.spec.canary.steps[status.current_step or 0].pause
    measured_now = status.analysis is not None and status.analysis.measured_at == t.now
    ready = t.canary_ready(status.canary.revision if status.canary else "")
    if passing and measured_now and t.now >= pause_over and ready:
        return advance(t)
    wait = min(t.interval, t.seconds_until(pause_over)) if t.now < pause_over else t.interval
    reason = "StepPause" if passing else "Analysing"
    return stay(
        t, status=status, action=Action.WAIT, reason=reason, requeue_after=wait, until=pause_over
    )


def advance(t: Tick) -> Plan:
    """Next step, or promotion after the last one. The canary is first resized for the next
    weight at the current one; ``progressing`` raises the weight once those pods are ready."""
    status = t.status
    step = (status.current_step or 0) + 1
    if step >= len(t.spec.canary.steps):
        return promote(t, "AllStepsPassed")
    weight = t.step_weight(step)
    moved = update(status, current_step=step, step_started_at=None, message=f"step {step}")
    event = normal("StepAdvanced", f"step {step}: weight {weight}%")
    return Plan(
        action=Action.ADVANCE_STEP,
        status=moved,
        weight=status.weight,
        canary=status.canary,
        canary_sized_for=weight,
        reason="StepAdvanced",
        events=(event,),
        requeue_after=WAIT_FOR_OBSERVATION,
    )
