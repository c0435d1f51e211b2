"""What one call of ``decide`` works with (``Tick``) and what a phase handler returns (``Plan``),
plus the small status edits every handler shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from coalmine.api.spec import ModelDeploymentSpec
from coalmine.api.status import (
    HISTORY_LIMIT,
    HistoryEntry,
    ModelDeploymentStatus,
    Outcome,
    RevisionRef,
)
from coalmine.rollout.types import Action, Controls, Event, Observations

WAIT_FOR_OBSERVATION = 5.0
"""Seconds until the next tick when only the cluster's catching up is awaited (a weight
applied, pods starting): short, so a rollout does not lose a whole interval per step."""
STEADY_REQUEUE = 300.0
"""Seconds between ticks when nothing is in flight (the operator also reacts to changes)."""
MESSAGE_LIMIT = 1024


@dataclass(frozen=True)
class Tick:
    """The inputs of one decision."""

    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus
    obs: Observations
    now: datetime

    @cached_property
    def target(self) -> RevisionRef:
        """The revision the spec asks for now."""
        model = self.spec.model
        return RevisionRef(
            revision=self.spec.revision(),
            version=model.version,
            uri=model.uri,
            format=model.format.value,
            sha256=model.sha256,
        )

    @property
    def controls(self) -> Controls:
        return self.obs.controls

    @property
    def paused(self) -> bool:
        """A person holds the rollout (``spec.paused`` or the operator's pause control)."""
        return self.spec.paused or self.obs.controls.paused

    @property
    def interval(self) -> float:
        return self.spec.canary.analysis.interval.total_seconds()

    @property
    def router_wait(self) -> float:
        """Seconds until the next tick after a weight was applied: the step (and its first
        look) starts only once the router is seen at the weight, so a short ``interval``
        must not wait the full ``WAIT_FOR_OBSERVATION`` while the canary already answers
        (bench B8: 5 s of a bad canary's errors went unjudged at a 1 s interval)."""
        return min(self.interval, WAIT_FOR_OBSERVATION)

    def step_weight(self, step: int | None) -> int:
        steps = self.spec.canary.steps
        return steps[min(step or 0, len(steps) - 1)].weight

    def step_shadow(self, step: int | None) -> int | None:
        """Percent of stable's requests mirrored at ``step``; None at a weighted step."""
        steps = self.spec.canary.steps
        return steps[min(step or 0, len(steps) - 1)].shadow

    def step_sizing(self, step: int | None) -> int:
        """The weight the canary's pods are sized for at ``step``. A shadow step mirroring
        ``s`` percent sends the canary ``s`` percent of stable's load while stable keeps all of
        it: the weight ``w`` with ``w / (100 - w) = s / 100`` gives it that many pods
        beside stable's (a 100% mirror: as many pods as stable)."""
        shadow = self.step_shadow(step)
        if shadow is None:
            return self.step_weight(step)
        return max(1, round(100 * shadow / (100 + shadow)))

    def canary_ready(self, revision: str) -> bool:
        """The canary Deployment runs ``revision`` and all its pods are ready."""
        return self.obs.canary is not None and self.obs.canary.ready_on(revision)

    def seconds_until(self, moment: datetime) -> float:
        return max(0.0, (moment - self.now).total_seconds())

    def with_status(self, status: ModelDeploymentStatus) -> Tick:
        """The same tick after a handler folded ``status`` (to hand on to the next handler)."""
        return Tick(self.spec, status, self.obs, self.now)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """A handler's answer; ``finalize`` turns it into the ``Decision``. Keyword-only: the
    builders in ``plans`` cover the shapes handlers share, and a bare ``0, None`` hides
    whether it is a weight or a revision."""

    action: Action
    status: ModelDeploymentStatus
    weight: int
    """Router weight to apply."""
    canary: RevisionRef | None
    """Revision the canary Deployment runs; None = scale it to zero."""
    canary_sized_for: int = 0
    """Weight the canary's pods are sized for (it can hold pods while it gets no traffic)."""
    stable_full: bool = False
    """Stable at full replicas whatever the weight (before traffic returns to it, promotion)."""
    reason: str = ""
    events: tuple[Event, ...] = ()
    requeue_after: float = STEADY_REQUEUE
    until: datetime | None = None
    wants_measurement: bool = False
    """See ``Decision.wants_measurement``."""


def update(status: ModelDeploymentStatus, **changes: object) -> ModelDeploymentStatus:
    """A copy of ``status`` with ``changes`` (snake_case field names).

    Not re-validated (this runs on every tick); the property tests validate the statuses
    ``decide`` produces, and the lists are capped where they grow."""
    return status.model_copy(update=changes)


def with_history(
    status: ModelDeploymentStatus,
    ref: RevisionRef,
    outcome: Outcome,
    reason: str,
    now: datetime,
) -> list[HistoryEntry]:
    """The history with one more entry, oldest dropped beyond ``HISTORY_LIMIT``."""
    entry = HistoryEntry(
        revision=ref.revision, version=ref.version, outcome=outcome, reason=reason[:256], at=now
    )
    return [*status.history, entry][-HISTORY_LIMIT:]


def failed_before(status: ModelDeploymentStatus, revision: str) -> bool:
    """The latest rollout of ``revision`` ended in failure (rolled back, aborted, failed), and
    no other revision was tried since: it must not start again without the retry control."""
    if not status.history:
        return False
    last = status.history[-1]
    return last.revision == revision and last.outcome in ("RolledBack", "Aborted", "Failed")


def normal(reason: str, message: str) -> Event:
    return Event(type="Normal", reason=reason, message=message[:MESSAGE_LIMIT])


def warning(reason: str, message: str) -> Event:
    return Event(type="Warning", reason=reason, message=message[:MESSAGE_LIMIT])
