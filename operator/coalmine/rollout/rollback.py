"""Rollback as a resumable sequence, one stage per tick at most, each idempotent:

``TrafficToStable`` (weight 0) -> router observed at 0 -> ``rollback.scaleDownDelay`` for
in-flight requests -> ``ScaleDownCanary`` (replicas 0) -> canary observed gone -> ``Done``.

Every decision here has weight 0, and the canary is scaled down only after the router was
observed at 0; a crash between any two stages resumes from ``status.rollback.stage`` and never
gives the canary traffic again.
"""

from __future__ import annotations

from dataclasses import replace

from coalmine.api.status import CheckStatus, Outcome, Phase, RollbackRecord
from coalmine.rollout.plans import holding_pods, stable_only
from coalmine.rollout.tick import (
    MESSAGE_LIMIT,
    WAIT_FOR_OBSERVATION,
    Plan,
    Tick,
    normal,
    update,
    warning,
    with_history,
)
from coalmine.rollout.types import Action, Event
from coalmine.rollout.verdicts import fmt


def start_rollback(
    t: Tick, outcome: Outcome, reason: str, message: str, culprit: CheckStatus | None = None
) -> Plan:
    """Begin taking the canary down; continues in the same tick as far as observed state allows."""
    canary = t.status.canary
    assert canary is not None
    record = RollbackRecord(
        revision=canary.revision,
        version=canary.version,
        reason=f"{reason}: {message}"[:MESSAGE_LIMIT],
        stage="TrafficToStable",
        started_at=t.now,
        outcome=outcome,
        check=culprit.name if culprit else None,
        value=culprit.value if culprit else None,
        stable_value=culprit.stable_value if culprit else None,
        samples=culprit.samples if culprit else None,
        threshold=culprit.threshold if culprit else None,
        feature=culprit.feature if culprit else None,
    )
    status = update(
        t.status,
        phase=Phase.ROLLING_BACK,
        weight=0,
        paused_by=None,
        rollback=record,
        message=f"rolling back {canary.version}: {message}"[:MESSAGE_LIMIT],
    )
    kind = normal if outcome == "Superseded" else warning
    event = kind("RollingBack", f"rolling back {canary.version}: {message}")
    plan = rolling_back(t.with_status(status))
    action = Action.FAIL_DEADLINE if reason == "ProgressDeadlineExceeded" else Action.ROLL_BACK
    return replace(plan, action=action, events=(event, *plan.events))


def rolling_back(t: Tick) -> Plan:
    """Advance the rollback one stage if what the last stage asked for is observed."""
    record = t.status.rollback
    assert record is not None
    if record.stage == "TrafficToStable":
        return _traffic_to_stable(t, record)
    if record.stage == "ScaleDownCanary":
        return _scale_down(t, record)
    return _done(t, record)


def _traffic_to_stable(t: Tick, record: RollbackRecord) -> Plan:
    status = t.status
    if t.obs.canary_weight != 0:  # None: router missing; the operator recreates it at 0
        return holding_pods(t, status=status, reason="WaitingForTrafficOnStable")
    on_stable = record.traffic_on_stable_at or t.now
    record = record.model_copy(update={"traffic_on_stable_at": on_stable})
    scale_down_at = on_stable + t.spec.rollback.scale_down_delay
    if t.now < scale_down_at:
        waiting = update(status, rollback=record)
        plan = holding_pods(t, status=waiting, reason="ScaleDownDelay")
        wait = min(t.interval, t.seconds_until(scale_down_at))
        return replace(plan, until=scale_down_at, requeue_after=wait)
    record = record.model_copy(update={"stage": "ScaleDownCanary"})
    return _scale_down(t.with_status(update(status, rollback=record)), record)


def _scale_down(t: Tick, record: RollbackRecord) -> Plan:
    canary = t.obs.canary
    if canary is not None and canary.replicas > 0:
        return stable_only(
            status=t.status,
            action=Action.ROLL_BACK,
            reason="ScalingDownCanary",
            stable_full=True,
            requeue_after=WAIT_FOR_OBSERVATION,
        )
    return _done(t, record)


def _done(t: Tick, record: RollbackRecord) -> Plan:
    status = t.status
    canary = status.canary
    events: tuple[Event, ...] = ()
    if record.stage != "Done":
        record = record.model_copy(update={"stage": "Done", "completed_at": t.now})
        events = (_rolled_back_event(record),)
    history = status.history
    if canary is not None:
        history = with_history(status, canary, record.outcome, record.reason, t.now)
    phase = Phase.HEALTHY if record.outcome == "Superseded" else Phase.DEGRADED
    done = update(
        status,
        phase=phase,
        canary=None,
        current_step=None,
        step_started_at=None,
        canary_started_at=None,
        weight=0,
        rollback=record,
        history=history,
        message=f"{record.version} rolled back: {record.reason}"[:MESSAGE_LIMIT],
    )
    return stable_only(
        status=done,
        action=Action.ROLL_BACK,
        reason="RolledBack",
        events=events,
        stable_full=True,
        requeue_after=t.interval,
    )


def _rolled_back_event(record: RollbackRecord) -> Event:
    """The Event that closes a rollback, with the failing check's numbers when there was one."""
    numbers = ""
    if record.check is not None:
        value = "none" if record.value is None else fmt(record.value)
        numbers = f" (check {record.check}, value {value}, threshold {record.threshold})"
    kind = normal if record.outcome == "Superseded" else warning
    return kind("RolledBack", f"{record.version} rolled back: {record.reason}{numbers}")
