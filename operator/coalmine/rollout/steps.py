"""A canary serving at a step: measure, judge, then advance, hold, pause or roll back.

A step advances only on a measurement taken after its pause elapsed in which every check
passed; a failing check rolls back at its failure limit; inconclusive analysis past its
budget pauses or rolls back per policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from coalmine.api.status import CheckStatus, ModelDeploymentStatus, Phase
from coalmine.rollout.policy import Assessment, assess, fold_analysis, judge_all
from coalmine.rollout.promotion import promote
from coalmine.rollout.rollback import start_rollback
from coalmine.rollout.tick import (
    WAIT_FOR_OBSERVATION,
    Plan,
    Tick,
    normal,
    update,
    warning,
)
from coalmine.rollout.types import Action, Event


def analyse(t: Tick) -> Plan:
    """Fold this tick's measurements, then act on what the analysis asks."""
    status, canary = t.status, t.spec.canary
    step = status.current_step or 0
    if t.obs.measurements is not None and _due(t, step):
        verdicts = judge_all(canary, t.obs.measurements)
        record = fold_analysis(status.analysis, verdicts, step, status.weight, t.now)
        status = update(status, analysis=record)
        t = Tick(t.spec, status, t.obs, t.now)
    judgement = assess(status.analysis, canary.policy, t.now)
    act = _ON_ASSESSMENT.get(judgement.assessment)
    if judgement.assessment == Assessment.ROLL_BACK:
        return _failed(t, judgement.culprit)
    if act is not None:
        return act(t)
    return _passing_or_hold(t, judgement.assessment == Assessment.PASSING)


def _due(t: Tick, step: int) -> bool:
    """A measurement counts once per analysis interval (a fifth of slack for timer jitter):
    the operator may reconcile more often (watch events), and every extra look would raise
    the chance of a false failure and make "consecutive failures" mean "within seconds"."""
    last = t.status.analysis
    if last is None or last.step != step:
        return True
    return (t.now - last.measured_at).total_seconds() >= 0.8 * t.interval


def _failed(t: Tick, culprit: CheckStatus | None) -> Plan:
    assert culprit is not None
    why = (
        f"check {culprit.name} failed {culprit.consecutive_failures} times in a row:"
        f" {culprit.reason} (threshold {culprit.threshold})"
    )
    return start_rollback(t, "RolledBack", "AnalysisFailed", why, culprit)


def _inconclusive_limit(t: Tick) -> Plan:
    policy = t.spec.canary.policy
    why = f"analysis inconclusive for {policy.inconclusive_limit}"
    if policy.on_inconclusive == "rollback":
        return start_rollback(t, "RolledBack", "InconclusiveLimit", why)
    return hold(t, "analysis", "InconclusiveAnalysis", f"{why}; set coalmine.dev/retry to resume")


_ON_ASSESSMENT: dict[Assessment, Callable[[Tick], Plan]] = {
    Assessment.INCONCLUSIVE_LIMIT: _inconclusive_limit,
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
    plan = stay(t, status, Action.WAIT, "StepPause" if passing else "Analysing", wait)
    return replace(plan, until=pause_over)


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
        Action.ADVANCE_STEP,
        moved,
        status.weight,
        status.canary,
        canary_sized_for=weight,
        reason="StepAdvanced",
        events=(event,),
        requeue_after=WAIT_FOR_OBSERVATION,
    )


def hold(t: Tick, by: str, reason: str, message: str) -> Plan:
    """Keep the canary at its weight, advancing nothing."""
    status = t.status
    events: tuple[Event, ...] = ()
    if status.phase != Phase.PAUSED or status.paused_by != by:
        events = (normal("Paused", message) if by == "user" else warning(reason, message),)
    held = update(status, phase=Phase.PAUSED, paused_by=by, message=message)
    return replace(stay(t, held, Action.PAUSE, reason, t.interval), events=events)


def stay(
    t: Tick, status: ModelDeploymentStatus, action: Action, reason: str, requeue: float
) -> Plan:
    return Plan(
        action,
        status,
        status.weight,
        status.canary,
        canary_sized_for=max(status.weight, t.step_weight(status.current_step)),
        reason=reason,
        requeue_after=requeue,
    )
