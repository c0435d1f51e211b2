"""The shapes of ``Plan`` that several handlers share, built in one place.

* ``stay``: the canary keeps its revision and weight, its pods sized for its weight or the
  step's, whichever is larger (so pods for the next weight are never taken away).
* ``hold``: ``stay`` in phase Paused, with one Event when the pause begins.
* ``keep_serving``: ``stay`` with stable at full replicas (a promotion in flight).
* ``holding_pods``: no traffic to the canary, its pods kept (a rollback waiting for the router).
* ``stable_only``: no canary at all.
"""

from __future__ import annotations

from datetime import datetime

from coalmine.api.status import ModelDeploymentStatus, Phase
from coalmine.rollout.tick import (
    STEADY_REQUEUE,
    WAIT_FOR_OBSERVATION,
    Plan,
    Tick,
    normal,
    update,
    warning,
)
from coalmine.rollout.types import Action, Event


def stay(
    t: Tick,
    *,
    status: ModelDeploymentStatus,
    action: Action,
    reason: str,
    requeue_after: float,
    events: tuple[Event, ...] = (),
    stable_full: bool = False,
    until: datetime | None = None,
) -> Plan:
    """The canary keeps its revision and weight."""
    return Plan(
        action=action,
        status=status,
        weight=status.weight,
        canary=status.canary,
        canary_sized_for=max(status.weight, t.step_sizing(status.current_step)),
        stable_full=stable_full,
        reason=reason,
        events=events,
        requeue_after=requeue_after,
        until=until,
    )


def hold(t: Tick, *, by: str, reason: str, message: str) -> Plan:
    """Keep the canary at its weight, advancing nothing; the Event only when the hold begins
    (a person's pause is Normal news, analysis holding the rollout is a Warning)."""
    status = t.status
    events: tuple[Event, ...] = ()
    if status.phase != Phase.PAUSED or status.paused_by != by:
        events = (normal("Paused", message) if by == "user" else warning(reason, message),)
    held = update(status, phase=Phase.PAUSED, paused_by=by, message=message)
    return stay(
        t, status=held, action=Action.PAUSE, reason=reason, requeue_after=t.interval, events=events
    )


def keep_serving(
    t: Tick,
    *,
    status: ModelDeploymentStatus,
    action: Action,
    reason: str,
    events: tuple[Event, ...],
) -> Plan:
    """A promotion in flight: stable at full replicas while the canary keeps serving."""
    return stay(
        t,
        status=status,
        action=action,
        reason=reason,
        requeue_after=WAIT_FOR_OBSERVATION,
        events=events,
        stable_full=True,
    )


def holding_pods(t: Tick, *, status: ModelDeploymentStatus, reason: str) -> Plan:
    """A rollback: no traffic for the canary, but its pods stay until the router is seen at 0
    (and the scale-down delay is over), with stable at full replicas to take the load."""
    return Plan(
        action=Action.ROLL_BACK,
        status=status,
        weight=0,
        canary=status.canary,
        canary_sized_for=t.step_sizing(status.current_step),
        stable_full=True,
        reason=reason,
        requeue_after=WAIT_FOR_OBSERVATION,
    )


def stable_only(
    *,
    status: ModelDeploymentStatus,
    action: Action,
    reason: str,
    events: tuple[Event, ...] = (),
    stable_full: bool = False,
    requeue_after: float = STEADY_REQUEUE,
    until: datetime | None = None,
) -> Plan:
    """No canary: weight 0 and the canary Deployment at zero pods."""
    return Plan(
        action=action,
        status=status,
        weight=0,
        canary=None,
        stable_full=stable_full,
        reason=reason,
        events=events,
        requeue_after=requeue_after,
        until=until,
    )
