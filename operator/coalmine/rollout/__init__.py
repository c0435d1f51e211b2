"""The rollout engine: a pure function from (spec, status, observations, now) to a decision.

Nothing here performs I/O or reads a clock; the operator observes, calls ``decide`` and acts:

* build ``Observations`` (the two Deployments as ``ChildObservation``, the router's observed
  weight, ``Measurement`` per check over ``analysis_window(...)``, ``Controls``);
* ``decision = decide(spec, status, observations, now)``, first with ``measurements=None``;
  only if ``decision.wants_measurement``, measure and decide again with them (so a rollback,
  an abort or a new revision never waits for the metrics provider);
* apply ``decision.stable`` / ``decision.canary`` (replicas already computed with
  ``plan_replicas``) and ``decision.canary_weight``: router first if the weight goes down,
  Deployments first if it goes up; patch ``decision.status`` once; record
  ``decision.events``; remove the annotations behind ``decision.consumed_controls``; requeue
  after ``decision.requeue_after`` seconds.
"""

from coalmine.rollout.decide import decide
from coalmine.rollout.pods import plan_replicas
from coalmine.rollout.pods.replicas import observed_weight
from coalmine.rollout.policy import analysis_window
from coalmine.rollout.types import (
    Action,
    ChildObservation,
    ChildPlan,
    Controls,
    Decision,
    Event,
    Measurement,
    Observations,
    SideMeasurement,
)

__all__ = [
    "Action",
    "ChildObservation",
    "ChildPlan",
    "Controls",
    "Decision",
    "Event",
    "Measurement",
    "Observations",
    "SideMeasurement",
    "analysis_window",
    "decide",
    "observed_weight",
    "plan_replicas",
]
