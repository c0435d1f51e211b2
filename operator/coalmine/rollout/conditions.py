"""Kubernetes Conditions derived from the folded status.

Seven types, each answering one question a person (or a pipeline) asks:

* ``Ready``: does the stable revision serve? (False while the first revision starts or failed.)
* ``Progressing``: is a canary in flight? The reason says where (``CanaryProgressing``,
  ``Promoting``, ``PausedByUser``, ``InconclusiveAnalysis``, ``RollingBack``) or how the last
  one ended (``Promoted``, ``RolledBack``, ``ProgressDeadlineExceeded``...).
* ``Analysis``: what the latest measurement said (True = every check passed, False = a check
  failed, Unknown = inconclusive: reason ``ProviderError`` when a query failed, ``Inconclusive``
  when there was no data or too few samples, ``NotRunning`` without a canary).
* ``AnalysisError``: is the metrics provider failing? (True = a query failed at the latest
  measurement, the message says which and since when; counted against
  ``policy.providerErrorLimit``, apart from no data.)
* ``Promoted``: does the revision in the spec serve all traffic, with no canary in flight?
  (True, reason ``Promoted``, in phase Healthy; False with the ``Progressing`` reason otherwise.)
* ``RolledBack``: was the revision in the spec rolled back (phase Degraded)? True with reason
  ``RolledBack``, ``Aborted``, ``ProgressDeadlineExceeded`` or the fetch reason (below), the
  rollback's reason as message.
* ``ArtifactReady``: did the model fetch fail? False with the fetch's reason
  (``ArtifactAccessDenied``, ``ArtifactUnreachable``...) and its redacted message while a
  canary's (or the first revision's) pods report one, and after a rollback it caused; True
  (``NoFetchFailureSeen``) otherwise. The pods are read only while their Deployment is not
  fully available, so True means no failure was seen, not that a fetch was checked.

Every condition carries the ``observedGeneration`` it was derived for, so ``kubectl wait
--for=condition=Promoted`` (which skips a condition older than ``metadata.generation``) never
returns on the previous revision's ``Promoted=True``.

``lastTransitionTime`` changes only when a condition's status flips, as the API conventions
ask, so a ``kubectl wait`` or an alert keyed on it sees one transition, not one per tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from coalmine.api.status import Condition, ConditionStatus, ModelDeploymentStatus, Phase
from coalmine.rollout.types import Observations

READY, PROGRESSING, ANALYSIS = "Ready", "Progressing", "Analysis"
ANALYSIS_ERROR = "AnalysisError"
PROMOTED, ROLLED_BACK = "Promoted", "RolledBack"
ARTIFACT_READY = "ArtifactReady"
DEADLINE = "ProgressDeadlineExceeded"
ARTIFACT_PREFIX = "Artifact"


def set_condition(
    conditions: Sequence[Condition],
    new: Condition,
) -> list[Condition]:
    """``conditions`` with ``new`` in place of its type; the old transition time is kept
    unless the status flipped."""
    old = next((c for c in conditions if c.type == new.type), None)
    if old is not None and old.status == new.status:
        new = new.model_copy(update={"last_transition_time": old.last_transition_time})
    others = [c for c in conditions if c.type != new.type]
    return sorted([*others, new], key=lambda c: c.type)


def _ready(status: ModelDeploymentStatus, obs: Observations) -> tuple[ConditionStatus, str]:
    if status.stable is None:
        return "False", "NoRevision"
    if obs.stable is None or obs.stable.ready_replicas == 0:
        return "False", "StableNotReady"
    if status.phase in (Phase.PENDING, Phase.FAILED):
        return "False", "FirstRevisionNotReady"
    return "True", "StableServing"


def _analysis(status: ModelDeploymentStatus) -> tuple[ConditionStatus, str]:
    if status.canary is None or status.analysis is None:
        return "Unknown", "NotRunning"
    if status.analysis.verdict == "inconclusive" and _failed_queries(status):
        return "Unknown", "ProviderError"
    return _ANALYSIS_CONDITION[status.analysis.verdict]


def _failed_queries(status: ModelDeploymentStatus) -> list[str]:
    """``check: reason`` of each check whose query failed at the latest measurement."""
    if status.canary is None or status.analysis is None:
        return []
    return [f"{c.name}: {c.reason}" for c in status.analysis.checks if c.provider_error]


def _analysis_error(status: ModelDeploymentStatus) -> tuple[ConditionStatus, str, str]:
    failed = _failed_queries(status)
    if status.canary is None or status.analysis is None:
        return "False", "NotRunning", ""
    since = status.analysis.provider_error_since
    if not failed or since is None:
        return "False", "ProviderAnswering", ""
    message = f"queries failing since {since.isoformat()}: " + "; ".join(failed)
    return "True", "ProviderError", message[:1024]


def _promoted(status: ModelDeploymentStatus, progress_reason: str) -> tuple[ConditionStatus, str]:
    # Healthy is reached only once the spec's revision is stable: a new revision in the spec
    # starts a canary (Progressing) in the very tick that observes it.
    if status.phase == Phase.HEALTHY and status.canary is None and status.stable is not None:
        return "True", PROMOTED
    return "False", progress_reason


def _rolled_back(status: ModelDeploymentStatus) -> tuple[ConditionStatus, str, str]:
    record = status.rollback
    if status.phase != Phase.DEGRADED or record is None:
        return "False", "NotRolledBack", ""
    cause = record.reason.split(":", 1)[0]
    named = cause == DEADLINE or cause.startswith(ARTIFACT_PREFIX)
    return "True", cause if named else record.outcome, record.reason


def _artifact_ready(
    status: ModelDeploymentStatus, obs: Observations
) -> tuple[ConditionStatus, str, str]:
    for variant, failure in (("canary", obs.canary_fetch), ("stable", obs.stable_fetch)):
        if failure is not None:
            return "False", failure.reason, f"{variant} model fetch: {failure.message}"
    record = status.rollback
    if status.phase == Phase.DEGRADED and record is not None:
        cause, _, message = record.reason.partition(": ")
        if cause.startswith(ARTIFACT_PREFIX):
            return "False", cause, f"canary {record.version}: {message}"
    return "True", "NoFetchFailureSeen", ""


_ANALYSIS_CONDITION: dict[str, tuple[ConditionStatus, str]] = {
    "pass": ("True", "ChecksPassing"),
    "fail": ("False", "CheckFailing"),
    "inconclusive": ("Unknown", "Inconclusive"),
}


def settled_reason(before: ModelDeploymentStatus, after: ModelDeploymentStatus, reason: str) -> str:
    """The ``Progressing`` reason for a tick that moves ``before`` to ``after``: a tick that
    finds an object Healthy and leaves it so keeps the reason that says how it got there
    (``Promoted``, ``Ready``, ``Reverted``). Its own (``StableServing``) would replace it on
    the first steady tick, 300 s later, and cost a status write and a log line for nothing
    (B9). Degraded needs no such rule: the tick after a rollback settles on
    ``RevisionFailedBefore``, whose message says how to retry, and every later one agrees."""
    if not before.phase == after.phase == Phase.HEALTHY:
        return reason
    old = next((c for c in before.conditions if c.type == PROGRESSING), None)
    return old.reason if old is not None and old.status == "False" else reason


def derive_conditions(
    status: ModelDeploymentStatus,
    obs: Observations,
    progress_reason: str,
    now: datetime,
) -> list[Condition]:
    """The seven conditions for ``status``; ``progress_reason`` comes from the handler."""
    in_flight = status.phase in (Phase.PROGRESSING, Phase.PAUSED, Phase.ROLLING_BACK)
    progressing: ConditionStatus = "True" if in_flight else "False"
    if status.phase == Phase.PENDING:
        progressing = "True"
    rows: list[tuple[str, ConditionStatus, str, str]] = [
        (READY, *_ready(status, obs), ""),
        (PROGRESSING, progressing, progress_reason, status.message),
        (ANALYSIS, *_analysis(status), ""),
        (ANALYSIS_ERROR, *_analysis_error(status)),
        (PROMOTED, *_promoted(status, progress_reason), ""),
        (ROLLED_BACK, *_rolled_back(status)),
        (ARTIFACT_READY, *_artifact_ready(status, obs)),
    ]
    conditions: list[Condition] = list(status.conditions)
    for kind, state, reason, message in rows:
        new = Condition(
            type=kind,
            status=state,
            reason=reason,
            message=message,
            last_transition_time=now,
            observed_generation=obs.generation,
        )
        conditions = set_condition(conditions, new)
    return conditions
