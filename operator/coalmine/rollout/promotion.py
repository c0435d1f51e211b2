"""Promotion: the canary's revision becomes stable, without a moment of reduced capacity.

1. ``promote``: ``status.stable`` := the canary's revision; the stable Deployment rolls to it
   at full replicas while the canary keeps serving at its weight.
2. Once stable is observed updated and ready on the new revision: weight 0.
3. Once the router is observed at 0: the canary scales to zero, ``Promoted`` is recorded.

While ``status.stable`` and ``status.canary`` name the same revision, a promotion is in flight;
that is the whole state, so a restart at any point resumes it.
"""

from __future__ import annotations

from coalmine.api.status import Phase
from coalmine.rollout.plans import keep_serving, stable_only
from coalmine.rollout.tick import Plan, Tick, normal, update, warning, with_history
from coalmine.rollout.types import Action, Event


def promote(t: Tick, reason: str) -> Plan:
    """Start promoting the canary."""
    canary = t.status.canary
    assert canary is not None
    status = update(
        t.status,
        phase=Phase.PROGRESSING,
        stable=canary,
        paused_by=None,
        step_started_at=t.now,  # while promoting: when the promotion started
        message=f"promoting {canary.version}: stable rolls to it",
    )
    event = normal("Promoting", f"promoting {canary.version} ({reason})")
    return keep_serving(t, status=status, action=Action.PROMOTE, reason=reason, events=(event,))


def promoting(t: Tick) -> Plan:
    """Finish a promotion in flight (abort is too late now: stable already runs the new
    template, and the previous revision's template is no longer known)."""
    status = t.status
    assert status.stable is not None and status.canary is not None
    events: tuple[Event, ...] = ()
    if t.controls.abort:
        events = (warning("AbortIgnored", "abort ignored: promotion already in progress"),)
    stable_ready = t.obs.stable is not None and t.obs.stable.ready_on(status.stable.revision)
    if not stable_ready:
        return _stable_rolling(t, events)
    if status.weight > 0:
        drained = update(status, weight=0, message="stable ready on the new revision: weight 0")
        return keep_serving(
            t, status=drained, action=Action.SET_WEIGHT, reason="StableUpdated", events=events
        )
    if t.obs.canary_weight != 0:
        return keep_serving(
            t, status=status, action=Action.WAIT, reason="WaitingForRouter", events=events
        )
    return _finish(t, events)


def _stable_rolling(t: Tick, events: tuple[Event, ...]) -> Plan:
    """Stable is not ready on the new revision yet. Past the progress deadline this is
    reported (once), and the canary keeps serving: the stable Deployment's rolling update
    keeps its old pods while new ones fail, so nothing is lost by waiting for a person."""
    status = t.status
    started = status.step_started_at or t.now
    if t.now < started + t.spec.canary.progress_deadline:
        return keep_serving(
            t, status=status, action=Action.WAIT, reason="WaitingForStableRollout", events=events
        )
    why = f"stable not ready on {status.canary.version if status.canary else '?'} within"
    why += f" {t.spec.canary.progress_deadline}; the canary keeps serving"
    stalled = update(status, message=why)
    if "PromotionStalled" not in (c.reason for c in status.conditions):
        events = (*events, warning("PromotionStalled", why))
    return keep_serving(
        t, status=stalled, action=Action.WAIT, reason="PromotionStalled", events=events
    )


def _finish(t: Tick, events: tuple[Event, ...]) -> Plan:
    status = t.status
    assert status.canary is not None
    done = update(
        status,
        phase=Phase.HEALTHY,
        canary=None,
        current_step=None,
        step_started_at=None,
        canary_started_at=None,
        paused_by=None,
        message="",
        history=with_history(status, status.canary, "Promoted", "PromotionComplete", t.now),
    )
    event = normal("Promoted", f"{status.canary.version} is stable and serves all traffic")
    return stable_only(
        status=done,
        action=Action.FINISH_PROMOTION,
        reason="Promoted",
        events=(*events, event),
        stable_full=True,
        requeue_after=t.interval,
    )
