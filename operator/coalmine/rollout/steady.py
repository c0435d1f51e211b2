"""No canary in flight: the first revision starting, or stable serving (Healthy / Degraded)."""

from __future__ import annotations

from coalmine.api.status import Phase
from coalmine.rollout.canary import start_canary
from coalmine.rollout.tick import (
    STEADY_REQUEUE,
    WAIT_FOR_OBSERVATION,
    Plan,
    Tick,
    failed_before,
    normal,
    update,
    warning,
    with_history,
)
from coalmine.rollout.types import Action, Event


def first_deploy(t: Tick) -> Plan:
    """Nothing serves yet, so there is nothing to protect: the spec's revision goes straight
    to the stable Deployment (a new spec replaces it at once). Pending until ready; Failed
    once ``progressDeadline`` passes; Healthy as soon as it is ready, even after Failed."""
    status, target = t.status, t.target
    events: tuple[Event, ...] = ()
    if status.stable is None or status.stable.revision != target.revision:
        history = status.history
        if status.stable is not None and status.phase == Phase.PENDING:
            history = with_history(status, status.stable, "Superseded", "SpecChanged", t.now)
        status = update(
            status, stable=target, phase=Phase.PENDING, step_started_at=t.now, history=history
        )
        events = (normal("Deploying", f"deploying first revision {target.version}"),)
    if t.obs.stable is not None and t.obs.stable.ready_on(target.revision):
        healthy = update(status, phase=Phase.HEALTHY, step_started_at=None, message="")
        ready = normal("Ready", f"revision {target.version} serves")
        return Plan(Action.NOTHING_TO_DO, healthy, 0, None, reason="Ready", events=(ready,))
    started = status.step_started_at or t.now
    deadline = started + t.spec.canary.progress_deadline
    if status.phase == Phase.PENDING and t.now >= deadline:
        why = f"revision {target.version} not ready within {t.spec.canary.progress_deadline}"
        failed = update(
            status,
            phase=Phase.FAILED,
            message=why,
            history=with_history(status, target, "Failed", "ProgressDeadlineExceeded", t.now),
        )
        event = warning("ProgressDeadlineExceeded", why)
        return Plan(
            Action.FAIL_DEADLINE,
            failed,
            0,
            None,
            reason="ProgressDeadlineExceeded",
            events=(*events, event),
            requeue_after=STEADY_REQUEUE,
        )
    if status.phase == Phase.FAILED:
        return Plan(Action.WAIT, status, 0, None, reason="ProgressDeadlineExceeded")
    waiting = update(status, message=f"waiting for revision {target.version} to become ready")
    return Plan(
        Action.DEPLOY_STABLE,
        waiting,
        0,
        None,
        reason="WaitingForStableReady",
        events=events,
        requeue_after=WAIT_FOR_OBSERVATION,
        until=deadline,
    )


def steady(t: Tick) -> Plan:
    """Stable serves everything. A new revision in the spec starts a canary, unless it is the
    revision that just failed (then only the retry control starts it again)."""
    status, target = t.status, t.target
    assert status.stable is not None
    if target.revision == status.stable.revision:
        # Same revision (maybe only the replicas changed): serve it; a revert after a failed
        # canary lands here too and makes the rollout Healthy again.
        healthy = update(status, phase=Phase.HEALTHY, stable=target, message="")
        reason = "StableServing" if status.phase == Phase.HEALTHY else "Reverted"
        return Plan(Action.NOTHING_TO_DO, healthy, 0, None, reason=reason)
    if failed_before(status, target.revision) and not t.controls.retry:
        why = (
            f"revision {target.version} was rolled back; set the coalmine.dev/retry annotation"
            " to try it again, or change the spec"
        )
        held = update(status, phase=Phase.DEGRADED, message=why)
        return Plan(Action.NOTHING_TO_DO, held, 0, None, reason="RevisionFailedBefore")
    return start_canary(t)
