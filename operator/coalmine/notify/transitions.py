"""Which transitions of a tick are news, and what they say: pure, from the ``Decision``.

A decision carries the Events of its transitions, and the engine emits each of those once
(when a step advances, when a rollback completes...), never on every tick. So notifications
are derived from the same Events, one for one, and say what the Event says plus the numbers
behind it from the new status.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from coalmine.api import ModelDeployment, ModelDeploymentStatus, RevisionRef
from coalmine.rollout.types import Decision, Event
from coalmine.settings import NotificationKind
from coalmine.subject import Subject

OPT_OUT = "coalmine.dev/notifications"
"""Annotation: ``"off"`` sends nothing about this ModelDeployment."""

_BY_REASON: dict[str, NotificationKind] = {
    "CanaryCreated": "started",
    "StepAdvanced": "step",
    "Paused": "paused",
    "InconclusiveAnalysis": "paused",
    "AnalysisError": "paused",
    "CheckFailed": "paused",
    "Promoted": "promoted",
    "ProgressDeadlineExceeded": "failed",
}


@dataclass(frozen=True)
class Notification:
    """One transition of one ModelDeployment, as every format renders it."""

    kind: NotificationKind
    namespace: str
    name: str
    at: datetime
    event: Event
    data: dict[str, Any]
    """The transition's facts (revisions, step, weight, checks, rollback record), camelCase."""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    """The same on every retry, so a receiver can drop duplicates."""


def notifications(
    subject: Subject, md: ModelDeployment, decision: Decision, now: datetime
) -> list[Notification]:
    """The notifications of this tick's transitions, in the order of their Events."""
    if md.metadata.annotations.get(OPT_OUT, "").lower() == "off":
        return []
    out = []
    for event in decision.events:
        kind = _kind(event, decision.status)
        if kind is not None:
            data = _facts(subject, md, decision.status, kind, event)
            ref = subject.ref
            out.append(Notification(kind, ref.namespace, ref.name, now, event, data))
    return out


def _kind(event: Event, status: ModelDeploymentStatus) -> NotificationKind | None:
    if event.reason != "RolledBack":
        return _BY_REASON.get(event.reason)
    record = status.rollback
    if record is None or record.outcome == "RolledBack":
        deadline = record is not None and record.reason.startswith("ProgressDeadlineExceeded")
        return "failed" if deadline else "rolledback"
    return "aborted" if record.outcome == "Aborted" else "superseded"


def _facts(
    subject: Subject,
    md: ModelDeployment,
    status: ModelDeploymentStatus,
    kind: str,
    event: Event,
) -> dict[str, Any]:
    steps = md.spec.canary.steps
    step = status.current_step
    data: dict[str, Any] = {
        "kind": kind,
        "namespace": subject.ref.namespace,
        "name": subject.ref.name,
        "uid": subject.uid,
        "generation": md.metadata.generation,
        "reason": event.reason,
        "message": event.message,
        "severity": event.type,
        "phase": status.phase.value,
        "stable": _revision(status.stable),
        "canary": _revision(status.canary),
        # As in status: currentStep indexes spec.canary.steps; weight is the share the canary
        # is set to now, stepWeight the current step's target (a step's weight is raised
        # once the canary's extra pods are ready, after the StepAdvanced transition).
        "currentStep": step if status.canary is not None else None,
        "steps": len(steps),
        "weight": status.weight,
        "stepWeight": steps[step].weight if step is not None and step < len(steps) else None,
        "analysis": status.analysis.to_manifest() if status.analysis is not None else None,
    }
    if kind in ("rolledback", "aborted", "superseded", "failed") and status.rollback is not None:
        data["rollback"] = status.rollback.to_manifest()
    return data


def _revision(ref: RevisionRef | None) -> dict[str, str] | None:
    return None if ref is None else {"version": ref.version, "revision": ref.revision}
