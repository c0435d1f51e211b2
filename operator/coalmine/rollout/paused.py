"""Phase Paused: a canary held at its weight, by a person or by inconclusive analysis.

* Held by a person (``spec.paused``): resumes when the pause is lifted.
* Held by analysis (inconclusive, or the metrics provider failing, past its budget; or a check
  with ``onFail: pause`` at its failure limit): still watched. Measurements go on every interval
  at the held weight (never above it), and a check with ``onFail: rollback`` failing
  ``failureLimit`` times rolls back as it would while progressing. It waits for a person to
  resume it, as Argo Rollouts does, even once checks pass again: the retry annotation resumes it
  (and gives every check a fresh failure count), promote / promote-full / abort decide it.

Resuming restarts the current step's pause: the canary must pass a full, fresh pause at its
weight before it advances, so time spent held never counts as evidence.
"""

from __future__ import annotations

from coalmine.api.status import Phase
from coalmine.rollout.plans import hold, stay
from coalmine.rollout.steps import watch_paused
from coalmine.rollout.tick import WAIT_FOR_OBSERVATION, Plan, Tick, normal, update
from coalmine.rollout.types import Action


def paused(t: Tick) -> Plan:
    status = t.status
    if status.paused_by == "analysis":
        if t.controls.retry:
            return resume(t, "RetryRequested")
        return watch_paused(t)
    if t.paused:
        return hold(t, by="user", reason="PausedByUser", message="paused by spec.paused")
    return resume(t, "Resumed")


def resume(t: Tick, reason: str) -> Plan:
    status = t.status
    analysis = status.analysis
    if analysis is not None:
        fresh = [c.model_copy(update={"consecutive_failures": 0}) for c in analysis.checks]
        analysis = analysis.model_copy(update={"inconclusive_since": None, "checks": fresh})
    resumed = update(
        status,
        phase=Phase.PROGRESSING,
        paused_by=None,
        step_started_at=None,
        analysis=analysis,
        message=f"resumed at step {status.current_step}",
    )
    return stay(
        t,
        status=resumed,
        action=Action.WAIT,
        reason=reason,
        requeue_after=WAIT_FOR_OBSERVATION,
        events=(normal(reason, f"canary resumed at step {status.current_step}"),),
    )
