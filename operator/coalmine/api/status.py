"""The ModelDeployment status: where the rollout is, and why, with the numbers.

Timing is held as timestamps (``stepStartedAt``), never countdowns, so an operator restarted
at any moment continues exactly where it was. Lists are capped so status stays small under
any number of ticks.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from coalmine.api.base import ApiModel

HISTORY_LIMIT = 10
RECENT_VERDICTS_LIMIT = 5


class Phase(StrEnum):
    """Where a ModelDeployment is, in one word (``kubectl get`` shows it)."""

    PENDING = "Pending"
    """The first revision is starting; nothing serves yet."""
    HEALTHY = "Healthy"
    """Stable serves all traffic; no canary."""
    PROGRESSING = "Progressing"
    """A canary is moving through its steps."""
    PAUSED = "Paused"
    """A canary is held: by a person, or because analysis stayed inconclusive."""
    ROLLING_BACK = "RollingBack"
    """Traffic is returning to stable and the canary is being removed."""
    DEGRADED = "Degraded"
    """The newest revision was rolled back; stable still serves. Change the spec or retry."""
    FAILED = "Failed"
    """No revision can serve (the first revision never became ready)."""


Verdict = Literal["pass", "fail", "inconclusive"]
ConditionStatus = Literal["True", "False", "Unknown"]
Outcome = Literal["Promoted", "RolledBack", "Superseded", "Aborted", "Failed"]
RollbackStage = Literal["TrafficToStable", "ScaleDownCanary", "Done"]


class RevisionRef(ApiModel):
    """One revision of the model and pod template."""

    revision: str
    """Hash of the model and pod template (see ``ModelDeploymentSpec.revision``)."""
    version: str
    uri: str
    format: str | None = None
    sha256: str | None = None


class Condition(ApiModel):
    """A Kubernetes-style condition."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition_time: datetime
    observed_generation: int | None = None


class CheckStatus(ApiModel):
    """The latest measurement of one check, with the numbers behind its verdict."""

    name: str
    kind: str
    verdict: Verdict
    value: float | None = None
    """The canary's measured value (None when there was nothing to measure)."""
    stable_value: float | None = None
    threshold: str = ""
    """The limit it was judged against, readable: ``<= 0.05``, ``ratio <= 1.5``."""
    samples: int | None = None
    reason: str = ""
    refused_labels: dict[str, int] = {}
    """quality: labels the pods refused over the window, by reason (forged, unknown,
    duplicate, expired); shown, not judged."""
    feature: str | None = None
    """Drift on inputs: the feature that drifted most; ``value`` is its score."""
    e_value: Annotated[float | None, Field(ge=0.0, allow_inf_nan=False)] = None
    """Sequential comparisons: the evidence that the canary is worse, from this step's window."""
    carried_e_value: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 1.0
    """Sequential comparisons: the product of the e-values the earlier steps ended with; the
    check fails when this times ``eValue`` reaches 1 / (1 - confidence)."""
    dry_run: bool = False
    """The check is in dry run: measured and recorded here, never acted on."""
    on_fail: Literal["rollback", "pause"] = "rollback"
    """What reaching ``policy.failureLimit`` does (the check's ``onFail``)."""
    provider_error: bool = False
    """Inconclusive because the metrics provider failed (not for want of data)."""
    consecutive_failures: int = 0
    recent: Annotated[list[Verdict], Field(max_length=RECENT_VERDICTS_LIMIT)] = []
    """The last few verdicts, newest last."""


class AnalysisStatus(ApiModel):
    """The analysis of the current step."""

    measured_at: datetime
    step: int
    weight: int
    verdict: Verdict
    checks: list[CheckStatus] = []
    inconclusive_since: datetime | None = None
    """When measurements last stopped being conclusive for want of data (no series, too few
    samples); drives ``policy.inconclusiveLimit``."""
    provider_error_since: datetime | None = None
    """Since when each measurement has had a check whose query failed (timeout, refused
    connection, error answer); drives ``policy.providerErrorLimit`` and the ``AnalysisError``
    condition. Cleared by a measurement with no failed query."""
    passed_at: datetime | None = None
    """When every check last passed at this step."""


class HistoryEntry(ApiModel):
    """How a revision's rollout ended."""

    revision: str
    version: str
    outcome: Outcome
    reason: str
    at: datetime


class RollbackRecord(ApiModel):
    """Why and how far a rollback went; each stage is idempotent and resumable."""

    revision: str
    version: str
    reason: str
    stage: RollbackStage
    started_at: datetime
    outcome: Outcome = "RolledBack"
    """How the rollout ends once the canary is gone: ``RolledBack`` (analysis or deadline),
    ``Aborted`` (a person), ``Superseded`` (the stable revision was applied again)."""
    check: str | None = None
    value: float | None = None
    stable_value: float | None = None
    """What the canary was compared with, for checks against stable."""
    samples: int | None = None
    """Requests, labels or predictions the deciding value rests on."""
    threshold: str | None = None
    feature: str | None = None
    """Drift on inputs: the feature that drifted most; ``value`` is its score."""
    traffic_on_stable_at: datetime | None = None
    completed_at: datetime | None = None


class ModelDeploymentStatus(ApiModel):
    """Observed state of a ModelDeployment."""

    # Other controllers (and kopf) may keep their own keys in status; ignore them.
    model_config = ConfigDict(extra="ignore")

    phase: Phase = Phase.PENDING
    observed_generation: int | None = None
    stable: RevisionRef | None = None
    canary: RevisionRef | None = None
    current_step: int | None = None
    """Index into ``spec.canary.steps`` while a canary runs."""
    weight: Annotated[int, Field(ge=0, le=100)] = 0
    """The current step's target percent of traffic on the canary. The gatewayAPI router
    applies it exactly; the replicas router through pod counts, so the real share is the
    canary's ready pods over all ready pods (1 beside 4 stable pods is 20% for a 10% step)."""
    applied_weight: Annotated[int | None, Field(ge=0, le=100)] = None
    """The percent of traffic the router was last seen really applying to the canary: the
    target for gatewayAPI; for the replicas router, the canary's ready pods over all ready
    pods. None while no canary runs or the router object is missing."""
    step_started_at: datetime | None = None
    canary_started_at: datetime | None = None
    paused_by: Literal["user", "analysis"] | None = None
    """Who holds a ``Paused`` canary: a person (``spec.paused``), or analysis that stayed
    inconclusive past ``policy.inconclusiveLimit`` (resume with the retry annotation)."""
    message: str = ""
    conditions: list[Condition] = []
    analysis: AnalysisStatus | None = None
    history: Annotated[list[HistoryEntry], Field(max_length=HISTORY_LIMIT)] = []
    rollback: RollbackRecord | None = None
    replicas: int | None = None
    """Pods the stable Deployment runs: the scale subresource's ``status.replicas``, the
    count an autoscaler scales from."""
    selector: str | None = None
    """The stable pods' label selector: the scale subresource's ``status.selector``, the pods
    an autoscaler averages its metrics over."""
