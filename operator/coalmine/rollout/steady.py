"""No canary in flight: the first revision starting, or stable serving (Healthy / Degraded)."""

from __future__ import annotations

from dataclasses import replace

from coalmine.api.status import ModelDeploymentStatus, Phase
from coalmine.rollout.canary import start_canary
from coalmine.rollout.plans import stable_only
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
    once ``progressDeadline`` passes; Healthy as soon as it is ready, even after Failed.

    Unless status was lost while a stable Deployment runs another revision (see
    :func:`rebuilt`): then something serves, and the spec's revision must earn its place."""
    recovered = rebuilt(t)
    if recovered is not None:
        return recovered
    status, target = t.status, t.target
    events: tuple[Event, ...] = ()
    if status.stable is None or status.stable.revision != target.revision:
        status = _deploying(t)
        events = (normal("Deploying", f"deploying first revision {target.version}"),)
    if t.obs.stable is not None and t.obs.stable.ready_on(target.revision):
        healthy = update(status, phase=Phase.HEALTHY, step_started_at=None, message="")
        ready = normal("Ready", f"revision {target.version} serves")
        return stable_only(
            status=healthy, action=Action.NOTHING_TO_DO, reason="Ready", events=(ready,)
        )
    started = status.step_started_at or t.now
    deadline = started + t.spec.canary.progress_deadline
    if status.phase == Phase.PENDING and t.now >= deadline:
        return _first_failed(t, status, events)
    if status.phase == Phase.FAILED and t.controls.retry:
        status, events = _retrying(t, status), (normal("Retrying", f"retrying {target.version}"),)
        deadline = t.now + t.spec.canary.progress_deadline
    elif status.phase == Phase.FAILED:
        return stable_only(status=status, action=Action.WAIT, reason="ProgressDeadlineExceeded")
    waiting = update(status, message=f"waiting for revision {target.version} to become ready")
    return stable_only(
        status=waiting,
        action=Action.DEPLOY_STABLE,
        reason="WaitingForStableReady",
        events=events,
        requeue_after=WAIT_FOR_OBSERVATION,
        until=deadline,
    )


def rebuilt(t: Tick) -> Plan | None:
    """Status names no stable revision, yet the stable Deployment runs one that is not the
    spec's: status was lost (deleted, restored from an old backup, hand-edited) mid-rollout.
    Shipping the spec's revision to stable would promote a canary nobody judged, so the
    stable revision is read back from the Deployment's ``coalmine.dev/revision-ref`` record
    and the spec's revision starts again as a canary at step 0 (its step, pause and analysis
    were in the lost status). None when there is nothing to rebuild."""
    running, target = t.obs.stable, t.target
    if (
        t.status.stable is not None
        or running is None
        or running.revision in (None, target.revision)
    ):
        return None
    if running.revision_ref is None:
        # No record to rebuild from (a Deployment written by an older operator): touch
        # neither Deployment's revision, send every request to stable, and say so.
        why = (
            f"status lost and the stable Deployment's revision {running.revision} has no"
            " coalmine.dev/revision-ref record: holding all traffic on it"
        )
        held = update(t.status, message=why)
        events = () if t.status.message == why else (warning("StatusLost", why),)
        return stable_only(status=held, action=Action.WAIT, reason="StatusLost", events=events)
    stable = running.revision_ref
    status = update(t.status, stable=stable, phase=Phase.HEALTHY, step_started_at=None, message="")
    plan = steady(Tick(t.spec, status, t.obs, t.now))
    why = (
        f"status was empty: stable revision {stable.version} ({stable.revision}) read back from"
        f" the stable Deployment; {target.version} starts again as a canary"
    )
    return replace(plan, events=(warning("StatusRebuilt", why), *plan.events))


def _deploying(t: Tick) -> ModelDeploymentStatus:
    """Status once the spec's revision replaces the first one (which is superseded if it was
    still pending) and its progress deadline starts counting."""
    status, target = t.status, t.target
    history = status.history
    if status.stable is not None and status.phase == Phase.PENDING:
        history = with_history(status, status.stable, "Superseded", "SpecChanged", t.now)
    return update(
        status, stable=target, phase=Phase.PENDING, step_started_at=t.now, history=history
    )


def _retrying(t: Tick, status: ModelDeploymentStatus) -> ModelDeploymentStatus:
    """The retry control on a Failed first revision: Pending again, with a fresh
    ``progressDeadline`` (its pods may only have needed longer, or a fixed dependency)."""
    return update(status, phase=Phase.PENDING, step_started_at=t.now)


def _first_failed(t: Tick, status: ModelDeploymentStatus, events: tuple[Event, ...]) -> Plan:
    """The first revision did not become ready within ``progressDeadline``: Failed, once."""
    target = t.target
    why = f"revision {target.version} not ready within {t.spec.canary.progress_deadline}"
    failed = update(
        status,
        phase=Phase.FAILED,
        message=why,
        history=with_history(status, target, "Failed", "ProgressDeadlineExceeded", t.now),
    )
    return stable_only(
        status=failed,
        action=Action.FAIL_DEADLINE,
        reason="ProgressDeadlineExceeded",
        events=(*events, warning("ProgressDeadlineExceeded", why)),
        requeue_after=STEADY_REQUEUE,
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
        return stable_only(status=healthy, action=Action.NOTHING_TO_DO, reason=reason)
    if failed_before(status, target.revision) and not t.controls.retry:
        why = (
            f"revision {target.version} was rolled back; set the coalmine.dev/retry annotation"
            " to try it again, or change the spec"
        )
        held = update(status, phase=Phase.DEGRADED, message=why)
        return stable_only(status=held, action=Action.NOTHING_TO_DO, reason="RevisionFailedBefore")
    return start_canary(t)
