"""The values ``decide`` reads and returns: what was observed, and what must happen next.

These are the whole contract between the pure engine and the operator that performs its
decisions. They are frozen dataclasses so a decision can be compared, logged and replayed; the
operator builds ``Observations`` from the cluster and Prometheus, and applies a ``Decision``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from coalmine.api.status import ModelDeploymentStatus, RevisionRef


@dataclass(frozen=True)
class ChildObservation:
    """One child Deployment (``<name>-stable`` or ``<name>-canary``) as observed."""

    revision: str | None
    """From its ``coalmine.dev/revision`` label; None if absent."""
    replicas: int
    """``spec.replicas``."""
    ready_replicas: int
    """``status.readyReplicas``."""
    updated: bool
    """``status.observedGeneration >= metadata.generation`` and ``updatedReplicas ==
    replicas == status.replicas``: the Deployment's rollout to its current template has
    finished, with no pod of an older template left (``kubectl rollout status``)."""
    template: str | None = None
    """The runtime record its pods were built from (an opaque string the engine never reads):
    carried so the operator can rebuild this revision's pods without reading the Deployment
    again."""
    revision_ref: RevisionRef | None = None
    """The revision it runs, from its ``coalmine.dev/revision-ref`` annotation (None when
    absent or not matching the label): what a lost status is rebuilt from."""

    def ready_on(self, revision: str) -> bool:
        """Runs ``revision``, fully rolled out and every desired pod ready."""
        return (
            self.revision == revision
            and self.updated
            and self.ready_replicas >= self.replicas
            and self.replicas > 0
        )


Distribution = tuple[tuple[str, float], ...]
"""(class or bucket ``le``, count) pairs of one side."""


class QueryProblem(StrEnum):
    """Why a side has no numbers, when a query did not give any (``SideMeasurement.error``).

    An empty result is no problem of the query: it is ``value=None`` (no data), judged
    inconclusive like these, but the operator can tell the three apart.
    """

    PROVIDER_ERROR = "provider_error"
    """Prometheus unreachable, timed out, answered 5xx, a redirect or something not JSON."""
    QUERY_INVALID = "query_invalid"
    """The spec's fault: a query Prometheus refused (400/422), a custom query that cannot be
    scoped to its namespace, a result that is no number, or a Prometheus not allowed."""


@dataclass(frozen=True)
class SideMeasurement:
    """Raw numbers of one side (canary or stable) of one check over the query window."""

    value: float | None = None
    """Headline number: error ratio, quantile seconds, accuracy, MAE, custom value."""
    samples: float | None = None
    """Requests / labelled predictions / predictions in the window."""
    errors: float | None = None
    """errorRate: count of server errors (the counts-based comparison needs counts)."""
    correct: float | None = None
    """quality/accuracy: correct count (``samples`` = labelled count)."""
    distribution: Distribution = ()
    """drift: (class or bucket, count) pairs."""
    refused: tuple[tuple[str, int], ...] = ()
    """quality, canary side: labels the deployment's pods refused in the window, by reason."""
    latency_buckets: tuple[tuple[float, float], ...] = ()
    """latency vs stable: the request histogram over the window, cumulative
    (upper edge in seconds, requests at or below it) pairs in edge order, ``inf`` last."""
    features: tuple[tuple[str, Distribution], ...] = ()
    """drift on inputs: each feature the check names, with its (bucket ``le``, count) pairs
    (empty pairs when the side exports no series of that feature)."""
    error: str | None = None
    """Provider error (timeout, connection refused, bad query...): the check is inconclusive.
    A short fixed text: never a response body, never a URL."""
    problem: QueryProblem | None = None
    """Set with ``error``: whether the provider or the spec is at fault."""
    stale: str | None = None
    """Why the side's samples stopped arriving (the freshness guard): the side was not
    measured, and the check is inconclusive, never a pass."""


@dataclass(frozen=True)
class Measurement:
    """One check measured for the canary and, when it compares, for stable."""

    check: str
    """The check's name in the spec."""
    canary: SideMeasurement
    stable: SideMeasurement | None = None


@dataclass(frozen=True)
class Controls:
    """Manual controls, as flags: the operator parses them from its annotations and
    ``spec.paused`` (``coalmine.controls`` owns the annotation keys; the engine knows none)."""

    paused: bool = False
    promote: bool = False
    """Skip the remaining steps (the current analysis must not be failing)."""
    promote_full: bool = False
    """Skip the analysis too."""
    abort: bool = False
    retry: bool = False


@dataclass(frozen=True)
class MirrorObservation:
    """What stable's pods are told about mirroring now, and where the canary answers."""

    file: str | None = None
    """The mirror file in the receipt-key Secret (``{}``: off); None: no Secret yet."""
    canary_address: str | None = None
    """``http://<ClusterIP>:<port>`` of the canary's own Service (read only when the spec has
    a shadow step); None when it has no ClusterIP yet."""


DEFINITIVE_FETCH_FAILURES = frozenset(
    {
        "ArtifactAccessDenied",
        "ArtifactNotFound",
        "ArtifactChecksumMismatch",
        "ArtifactTooLarge",
        "ArtifactInvalid",
    }
)
"""Fetch reasons (``coalmine_serving.artifacts.reasons``) a retry cannot cure: the same keys,
key, bytes or size give the same answer, so the canary is rolled back at once. Every other
reason (unreachable, truncated, a 5xx, a credentials Secret not created yet) may pass on the
init container's next restart, so it only shows as a condition until ``progressDeadline``.
(``ArtifactNotFound`` is definitive too: the revision names its key, and a key uploaded later
is a new ``spec.model`` that starts a new canary anyway.)"""


@dataclass(frozen=True)
class FetchFailure:
    """The newest failed model fetch among a Deployment's pods (its init container's
    termination message), already redacted and capped by the operator."""

    reason: str
    """CamelCase, e.g. ``ArtifactAccessDenied``."""
    message: str
    """The fetch's own message (a redacted URI and an S3 code, never a credential)."""

    @property
    def definitive(self) -> bool:
        return self.reason in DEFINITIVE_FETCH_FAILURES


@dataclass(frozen=True)
class Observations:
    """Everything the operator saw this tick."""

    generation: int
    stable: ChildObservation | None
    canary: ChildObservation | None
    canary_weight: int | None
    """Weight the router actually applies now (None = router object missing)."""
    measurements: tuple[Measurement, ...] | None
    """None = not measured this tick (for example while the canary has no traffic)."""
    controls: Controls = Controls()
    mirror: MirrorObservation = MirrorObservation()
    canary_fetch: FetchFailure | None = None
    """Why the canary's model fetch failed, read from its pods only while the canary is not
    fully available; None: no failure seen (or the pods were not read)."""
    stable_fetch: FetchFailure | None = None
    """The same for the stable Deployment, read only while the first revision starts."""


@dataclass(frozen=True)
class Mirror:
    """Stable mirrors ``share`` percent of its requests to the canary (a shadow step)."""

    share: int
    canary: RevisionRef
    """The canary revision mirrored to: its comparisons are counted under this revision."""


@dataclass(frozen=True)
class ChildPlan:
    """Desired state of one Deployment."""

    revision: RevisionRef
    """Which model and pod template it must run."""
    replicas: int


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event the operator should record on the ModelDeployment."""

    type: Literal["Normal", "Warning"]
    reason: str
    """CamelCase."""
    message: str
    """Names the check, its value and threshold when it is about analysis."""


class Action(StrEnum):
    """What a decision does, in one word (a ``str``, so it logs and compares as text)."""

    CREATE_CANARY = "CreateCanary"
    SET_WEIGHT = "SetWeight"
    WAIT = "Wait"
    ADVANCE_STEP = "AdvanceStep"
    PROMOTE = "Promote"
    FINISH_PROMOTION = "FinishPromotion"
    ROLL_BACK = "RollBack"
    PAUSE = "Pause"
    FAIL_DEADLINE = "FailDeadline"
    DEPLOY_STABLE = "DeployStable"
    NOTHING_TO_DO = "NothingToDo"


@dataclass(frozen=True)
class Decision:
    """What the operator must make true now, and the status to write."""

    action: Action
    stable: ChildPlan | None
    """None = leave as is (only before the very first revision is known)."""
    canary: ChildPlan | None
    """None = no canary Deployment should serve (replicas 0 / absent)."""
    canary_weight: int
    """Weight the router must apply."""
    status: ModelDeploymentStatus
    """The new status, folded in memory."""
    events: tuple[Event, ...]
    requeue_after: float
    """Seconds until the next tick is needed."""
    consumed_controls: Controls = Controls()
    """The controls this tick acted on (or found set, and settled): the operator removes what
    requested them, so a control fires once. ``paused`` is never consumed: it is the spec's."""
    reason: str = ""
    """Why this action (CamelCase), e.g. ``WaitingForCanaryReady`` or ``StepPause``."""
    until: datetime | None = None
    """For waits with a known end (a step's pause, the scale-down delay): when it is over."""
    mirror: Mirror | None = None
    """Where stable mirrors now (a shadow step), or None: no mirroring."""
    wants_measurement: bool = False
    """A measurement is due and this decision was made without one: the operator should query
    the metrics and decide again with them. False for every decision that does not reach
    analysis (a rollback, an abort, a new revision...), so those never wait for Prometheus."""
