"""``decide``: the whole rollout as a pure function of (spec, status, observations, now).

The status's phase picks a handler from ``PHASE_HANDLERS``; each handler returns a ``Plan``
(what to run, at what weight, the new status), and ``finalize`` turns it into the
``Decision`` the operator applies: replica counts, Conditions, observedGeneration and the
manual controls consumed. Nothing here reads a clock or talks to anything; timing comes
only from timestamps in status, so a restarted operator decides exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from coalmine.api.spec import ModelDeploymentSpec
from coalmine.api.status import ModelDeploymentStatus, Phase
from coalmine.rollout.canary import interrupt, progressing, promote_control
from coalmine.rollout.conditions import derive_conditions, settled_reason
from coalmine.rollout.paused import paused
from coalmine.rollout.pods import plan_replicas
from coalmine.rollout.promotion import promoting
from coalmine.rollout.rollback import rolling_back, start_rollback
from coalmine.rollout.steady import first_deploy, steady
from coalmine.rollout.tick import MESSAGE_LIMIT, Plan, Tick, update, warning
from coalmine.rollout.types import Action, ChildPlan, Decision, Mirror, Observations

Handler = Callable[[Tick], Plan]


def decide(
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    observations: Observations,
    now: datetime,
) -> Decision:
    """What the operator must make true now, and the status to write."""
    tick = Tick(spec, status, observations, now)
    return finalize(tick, PHASE_HANDLERS[status.phase](tick))


def _steady(t: Tick) -> Plan:
    return first_deploy(t) if t.status.stable is None else steady(t)


def _in_flight(t: Tick) -> Plan:
    """Progressing or Paused: a promotion to finish, an interruption, or the step logic."""
    status = t.status
    if status.stable is None or status.canary is None:
        return _steady(t)
    if status.canary.revision == status.stable.revision:
        return promoting(t)
    handler = progressing if status.phase == Phase.PROGRESSING else paused
    plan = interrupt(t) or promote_control(t) or handler(t)
    if t.controls.promote and plan.action != Action.PROMOTE:
        failing = status.analysis is not None and status.analysis.verdict == "fail"
        why = "a check is failing" if failing else f"the rollout is {plan.reason}"
        refused = warning("PromoteRefused", f"promote refused: {why}")
        plan = replace(plan, events=(*plan.events, refused))
    return plan


def _rolling_back(t: Tick) -> Plan:
    status = t.status
    if status.canary is None:
        return _steady(t)
    if status.rollback is None or status.rollback.stage == "Done":
        # Only a hand-edited status gets here: finish the job safely.
        return start_rollback(t, "RolledBack", "Recovered", "rollback record missing")
    return rolling_back(t)


PHASE_HANDLERS: dict[Phase, Handler] = {
    Phase.PENDING: first_deploy,
    Phase.FAILED: first_deploy,
    Phase.HEALTHY: _steady,
    Phase.DEGRADED: _steady,
    Phase.PROGRESSING: _in_flight,
    Phase.PAUSED: _in_flight,
    Phase.ROLLING_BACK: _rolling_back,
}


def finalize(t: Tick, plan: Plan) -> Decision:
    """Replica counts, Conditions, observedGeneration and consumed controls for ``plan``."""
    status = update(
        plan.status,
        observed_generation=t.obs.generation,
        message=plan.status.message[:MESSAGE_LIMIT],
        # Shown beside the target weight: the replicas router applies a pod ratio instead.
        applied_weight=t.obs.canary_weight if plan.status.canary is not None else None,
    )
    reason = settled_reason(t.status, status, plan.reason)
    status = update(status, conditions=derive_conditions(status, t.obs, reason, t.now))
    stable, canary = _child_plans(t, plan, status)
    return Decision(
        action=plan.action,
        stable=stable,
        canary=canary,
        canary_weight=plan.weight,
        status=status,
        events=plan.events,
        requeue_after=plan.requeue_after,
        # Every control found set is settled by this tick (acted on, refused with an Event,
        # or meaningless in this phase); ``paused`` is the spec's and stays.
        consumed_controls=replace(t.obs.controls, paused=False),
        reason=plan.reason,
        until=plan.until,
        wants_measurement=plan.wants_measurement,
        mirror=_mirror(t, status, plan),
    )


def _mirror(t: Tick, status: ModelDeploymentStatus, plan: Plan) -> Mirror | None:
    """Stable mirrors to the canary only while it sits at a shadow step with no client
    traffic (progressing, or held there); every other plan (a rollback, a promotion, the
    next step) turns the mirror off, in the same act that changes anything else."""
    if status.phase not in (Phase.PROGRESSING, Phase.PAUSED) or plan.canary is None:
        return None
    shadow = t.step_shadow(status.current_step)
    if shadow is None or plan.weight != 0 or status.canary is None:
        return None
    return Mirror(share=shadow, canary=status.canary)


def _child_plans(
    t: Tick, plan: Plan, status: ModelDeploymentStatus
) -> tuple[ChildPlan | None, ChildPlan | None]:
    """Both Deployments' revision and replicas: stable at what the weight leaves it (or full),
    the canary sized for ``plan.canary_sized_for``."""
    total = t.spec.runtime.replicas
    traffic = t.spec.traffic

    def replicas(weight: int) -> tuple[int, int]:
        return plan_replicas(total, weight, traffic.router, traffic.scale_down_stable)

    stable = None
    if status.stable is not None:
        count = total if plan.stable_full else replicas(plan.weight)[0]
        stable = ChildPlan(status.stable, count)
    canary = None
    if plan.canary is not None:
        sized_for = plan.canary_sized_for or t.step_sizing(0)
        canary = ChildPlan(plan.canary, replicas(sized_for)[1])
    return stable, canary
