"""A canary in flight: start it, give it traffic once ready, hand each step to ``steps``.

Order of precedence on every tick, most protective first: the spec going back to stable, a
newer revision, abort, a person's pause, promote-full, then readiness and analysis.
"""

from __future__ import annotations

from dataclasses import replace

from coalmine.api.status import Phase
from coalmine.rollout.plans import hold, stay
from coalmine.rollout.pods import expected_weight
from coalmine.rollout.promotion import promote
from coalmine.rollout.rollback import start_rollback
from coalmine.rollout.steps import analyse
from coalmine.rollout.tick import (
    WAIT_FOR_OBSERVATION,
    Plan,
    Tick,
    normal,
    update,
    warning,
    with_history,
)
from coalmine.rollout.types import Action, Event, FetchFailure


def start_canary(t: Tick) -> Plan:
    """Create the canary at step 0 with no traffic; traffic follows once its pods are ready."""
    target = t.target
    status = update(
        t.status,
        phase=Phase.PROGRESSING,
        canary=target,
        current_step=0,
        weight=0,
        step_started_at=None,
        canary_started_at=t.now,
        analysis=None,
        paused_by=None,
        message=f"starting canary {target.version}",
    )
    event = normal("CanaryCreated", f"canary {target.version} ({target.revision}) started")
    return Plan(
        action=Action.CREATE_CANARY,
        status=status,
        weight=0,
        canary=target,
        canary_sized_for=t.step_sizing(0),
        reason="CanaryCreated",
        events=(event,),
        requeue_after=WAIT_FOR_OBSERVATION,
    )


def interrupt(t: Tick) -> Plan | None:
    """What outranks the step logic: the stable revision reapplied, a newer revision, abort."""
    status, target = t.status, t.target
    assert status.stable is not None and status.canary is not None
    if target.revision == status.stable.revision:
        why = f"spec is back on stable {status.stable.version}"
        return start_rollback(t, "Superseded", "StableReapplied", why)
    if target.revision != status.canary.revision:
        return supersede(t)
    if t.controls.abort:
        return start_rollback(t, "Aborted", "AbortRequested", "aborted by the abort annotation")
    if t.controls.promote_full:
        return promote(t, "PromoteFullRequested")
    return None


def supersede(t: Tick) -> Plan:
    """A newer revision: take traffic off the old canary first; only once the router is seen
    at 0 does the canary Deployment switch to the new revision and restart at step 0."""
    status = t.status
    assert status.canary is not None
    if status.weight > 0 or (t.obs.canary_weight or 0) > 0:
        draining = update(
            status, weight=0, message=f"new revision {t.target.version}: traffic to stable first"
        )
        return Plan(
            action=Action.SET_WEIGHT,
            status=draining,
            weight=0,
            canary=status.canary,
            canary_sized_for=t.step_sizing(status.current_step),
            reason="NewRevisionTrafficToStable",
            requeue_after=WAIT_FOR_OBSERVATION,
        )
    old = status.canary
    history = with_history(status, old, "Superseded", f"NewRevision {t.target.version}", t.now)
    restarted = start_canary(t.with_status(update(status, history=history)))
    event = normal("Superseded", f"canary {old.version} superseded by {t.target.version}")
    return replace(restarted, events=(event, *restarted.events))


def promote_control(t: Tick) -> Plan | None:
    """The promote annotation: skip the remaining steps, unless a check is failing."""
    if not t.controls.promote:
        return None
    analysis = t.status.analysis
    if analysis is not None and analysis.verdict == "fail":
        return None  # decide's _in_flight reports the refusal with a PromoteRefused Event
    return promote(t, "PromoteRequested")


def progressing(t: Tick) -> Plan:
    """Phase Progressing: readiness, then traffic, then analysis of the current step."""
    status = t.status
    assert status.canary is not None
    if t.paused:
        return hold(t, by="user", reason="PausedByUser", message="paused by spec.paused")
    ready = t.canary_ready(status.canary.revision)
    if status.weight == 0 and not ready:
        return await_canary(t)
    if status.weight != t.step_weight(status.current_step):
        # Sized for the step's weight already; the weight follows once those pods are ready.
        return give_traffic(t) if ready else await_scale_up(t)
    if status.step_started_at is None:
        return start_shadow(t) if t.step_shadow(status.current_step) else await_router(t)
    return analyse(t)


def start_shadow(t: Tick) -> Plan:
    """A shadow step starts once the canary's pods are ready: no router has to move (the
    weight stays 0), and the mirror (``Decision.mirror``) is on from now. Until stable's
    pods have read it, there are no comparisons, which holds the step (no data never
    passes)."""
    started = update(t.status, step_started_at=t.now, message="shadow: mirroring to the canary")
    return stay(
        t, status=started, action=Action.WAIT, reason="ShadowStarted", requeue_after=t.interval
    )


def await_canary(t: Tick) -> Plan:
    """The canary's pods are not ready yet; the progress deadline counts from its start. A
    fetch that failed for good (``FetchFailure.definitive``: wrong keys, no such key, wrong
    sha256, too big) rolls it back at once; the canary has had no traffic."""
    status = t.status
    assert status.canary is not None
    started = status.canary_started_at or t.now
    deadline = started + t.spec.canary.progress_deadline
    failure = t.obs.canary_fetch
    if failure is not None and failure.definitive:
        return _fetch_failed(t, failure)
    if t.now >= deadline:
        why = f"canary not ready within {t.spec.canary.progress_deadline}"
        return start_rollback(t, "RolledBack", "ProgressDeadlineExceeded", why)
    message = f"waiting for canary {status.canary.version} pods"
    if failure is not None:  # transient: the kubelet restarts the fetch until the deadline
        message += f"; model fetch failing: {failure.reason}: {failure.message}"
    waiting = update(status, message=message)
    return Plan(
        action=Action.WAIT,
        status=waiting,
        weight=0,
        canary=status.canary,
        canary_sized_for=t.step_sizing(status.current_step),
        reason="WaitingForCanaryReady",
        requeue_after=WAIT_FOR_OBSERVATION,
        until=deadline,
    )


def _fetch_failed(t: Tick, failure: FetchFailure) -> Plan:
    """No restart of the init container can fetch it: roll back now, not at the deadline."""
    why = f"model fetch failed: {failure.message}"
    return start_rollback(t, "RolledBack", failure.reason, why)


def await_scale_up(t: Tick) -> Plan:
    """Pods for the next step's weight are not ready yet. The step advanced on the
    measurement folded at that moment, so the deadline counts from ``analysis.measuredAt``."""
    status = t.status
    since = status.analysis.measured_at if status.analysis else status.canary_started_at
    deadline = (since or t.now) + t.spec.canary.progress_deadline
    failure = t.obs.canary_fetch
    if failure is not None and failure.definitive:  # the key deleted mid-rollout, say
        return _fetch_failed(t, failure)
    if t.now >= deadline:
        why = f"canary not scaled up within {t.spec.canary.progress_deadline}"
        return start_rollback(t, "RolledBack", "ProgressDeadlineExceeded", why)
    return stay(
        t,
        status=status,
        action=Action.WAIT,
        reason="ScalingCanary",
        requeue_after=WAIT_FOR_OBSERVATION,
        until=deadline,
    )


def give_traffic(t: Tick) -> Plan:
    """The canary is ready: apply the current step's weight (deployments first, then router)."""
    status = t.status
    weight = t.step_weight(status.current_step)
    serving = update(status, weight=weight, step_started_at=None, message=f"weight {weight}%")
    return Plan(
        action=Action.SET_WEIGHT,
        status=serving,
        weight=weight,
        canary=status.canary,
        canary_sized_for=weight,
        reason="CanaryReady",
        requeue_after=t.router_wait,
        events=_inexpressible(t, status.current_step or 0, weight),
    )


def _inexpressible(t: Tick, step: int, weight: int) -> tuple[Event, ...]:
    """A Warning, once per step (when its weight is applied), when the router cannot give the
    canary the step's share: the replicas router splits by pods, so 4 replicas turn a 10%
    step into 20%, and the analysis then judges a canary on more traffic than planned."""
    traffic, total = t.spec.traffic, t.spec.runtime.replicas
    applied = expected_weight(total, weight, traffic.router, traffic.scale_down_stable)
    if applied == weight:
        return ()
    why = (
        f"step {step + 1} asks {weight}% but {total} replicas give the canary {applied}% "
        f"through the {traffic.router.value} router; use more replicas or the gatewayAPI router"
    )
    return (warning("WeightNotExpressible", why),)


def await_router(t: Tick) -> Plan:
    """The step's pause starts when the router is seen applying the step's weight, not when
    we asked for it, so a slow router does not eat the pause."""
    status = t.status
    if _router_moved(t, status.current_step or 0):
        started = update(status, step_started_at=t.now)
        return stay(
            t, status=started, action=Action.WAIT, reason="StepStarted", requeue_after=t.interval
        )
    return stay(
        t,
        status=status,
        action=Action.WAIT,
        reason="WaitingForRouter",
        requeue_after=t.router_wait,
    )


def _router_moved(t: Tick, step: int) -> bool:
    """Observed at this step's weight (one point of slack: the replicas router's weight is a
    rounded pod ratio), or at least clearly past the previous step's (a stray extra pod must
    not hold a rollout forever)."""
    observed = t.obs.canary_weight
    if observed is None or observed <= 0:
        return False
    traffic, total = t.spec.traffic, t.spec.runtime.replicas

    def expected(weight: int) -> int:
        return expected_weight(total, weight, traffic.router, traffic.scale_down_stable)

    previous = expected(t.step_weight(step - 1)) if step > 0 else 0
    return observed >= expected(t.step_weight(step)) - 1 or observed > previous + 1
