"""The manual controls as declarative patches, and when each one makes sense.

Every control is a merge patch on the ModelDeployment, never a call to the operator: the
operator reads the annotations (and ``spec.paused``) on its next tick, acts, and removes the
annotations it consumed. GitOps users write the same annotations in their manifests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from coalmine.api import ModelDeploymentStatus, Phase
from coalmine.controls import (
    ANNOTATION_ABORT,
    ANNOTATION_PROMOTE,
    ANNOTATION_PROMOTE_FULL,
    ANNOTATION_RETRY,
    ANNOTATION_ROTATE_KEYS,
)

# A canary can be promoted or aborted only while it is moving or held.
_CANARY_RUNNING = frozenset({Phase.PROGRESSING, Phase.PAUSED})
# Retry starts the newest revision again after it was rolled back or never became ready, and
# restarts analysis that paused the canary because it stayed inconclusive too long.
_RETRYABLE = frozenset({Phase.DEGRADED, Phase.FAILED})


class Control(StrEnum):
    PROMOTE = "promote"
    PROMOTE_FULL = "promote --full"
    ABORT = "abort"
    RETRY = "retry"
    ROTATE_KEYS = "rotate-keys"


ANNOTATIONS: dict[Control, str] = {
    Control.PROMOTE: ANNOTATION_PROMOTE,
    Control.PROMOTE_FULL: ANNOTATION_PROMOTE_FULL,
    Control.ABORT: ANNOTATION_ABORT,
    Control.RETRY: ANNOTATION_RETRY,
    Control.ROTATE_KEYS: ANNOTATION_ROTATE_KEYS,
}


@dataclass(frozen=True)
class Refusal:
    """Why a control would do nothing now; the CLI prints it and exits non-zero."""

    message: str


def rfc3339(moment: datetime) -> str:
    """UTC, second precision, ``Z`` suffix: the form Kubernetes itself writes.

    >>> rfc3339(datetime(2026, 11, 27, 5, 1, 2, 345, tzinfo=UTC))
    '2026-11-27T05:01:02Z'
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def annotation_patch(control: Control, now: datetime) -> dict[str, Any]:
    """The merge patch that requests ``control``. The value is the request time, so a second
    request after the operator consumed the first is a visible change, and people can see when
    it was asked for."""
    return {"metadata": {"annotations": {ANNOTATIONS[control]: rfc3339(now)}}}


def paused_patch(paused: bool) -> dict[str, Any]:
    """The merge patch for ``pause`` (True) and ``resume`` (False)."""
    return {"spec": {"paused": paused}}


def refusal(control: Control, name: str, status: ModelDeploymentStatus) -> Refusal | None:
    """None when ``control`` can act on this status; otherwise what to tell the person."""
    phase = status.phase
    if control in (Control.PROMOTE, Control.PROMOTE_FULL, Control.ABORT):
        if phase in _CANARY_RUNNING:
            return None
        verb = control.value.split()[0]
        return Refusal(f"nothing to {verb}: {name} has no canary in progress (phase {phase})")
    if control is not Control.RETRY:
        return None  # rotate-keys makes sense in every phase
    if phase in _RETRYABLE or (phase is Phase.PAUSED and status.paused_by == "analysis"):
        return None
    if phase is Phase.PAUSED:
        return Refusal(f"{name} is paused by a person (spec.paused): use resume, not retry")
    return Refusal(
        f"nothing to retry: {name} is {phase}; retry applies after a rollback (Degraded), "
        "a failed first revision (Failed), or a pause by inconclusive analysis"
    )
