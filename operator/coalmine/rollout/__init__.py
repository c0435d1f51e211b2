"""The rollout engine: a pure function from (spec, status, observations, now) to a decision.

Nothing here performs I/O or reads a clock; the operator observes, calls ``decide`` and acts.
"""

from coalmine.rollout.decide import decide
from coalmine.rollout.policy import analysis_window
from coalmine.rollout.replicas import observed_weight, plan_replicas
from coalmine.rollout.types import (
    CONTROL_ANNOTATIONS,
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
    "CONTROL_ANNOTATIONS",
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
