"""The contract between the serving runtime and the operator: metrics, formats, list syntax.

Every metric the server exports, with its labels and buckets, is declared here and nowhere
else. The server builds its prometheus_client collectors from these specs; the operator builds
its PromQL from the same names. A contract test scrapes a real ``/metrics`` with a real
Prometheus and checks every spec below, so a rename breaks a test rather than a rollout.

The same goes for the other things both sides must agree on: the artifact formats
(:class:`ModelFormat`, in the CRD and in the server's ``--model-format``), how a list is
written in a flag or an environment variable (:func:`split_csv`), which input features
the server buckets (:class:`InputFeature`, written by the operator in ``--input-features``),
and how a URI appears in any message either side prints (:func:`redact_uri`).

Pure stdlib on purpose: the operator (its pure API models included) imports this module and
must not pull in prometheus_client, Starlette or numpy.

Worked PromQL examples (what the operator is expected to write)::

    # canary server-error ratio over 20s (client errors are kept out: a bad request is the
    # caller's fault, not the new model's)
    sum(rate(coalmine_requests_total{model="iris",variant="canary",outcome="server_error"}[20s]))
      / sum(rate(coalmine_requests_total{model="iris",variant="canary"}[20s]))

    # canary p99 latency
    histogram_quantile(0.99, sum by (le) (
      rate(coalmine_request_duration_seconds_bucket{model="iris",variant="canary"}[20s])))

    # canary input distribution of one feature, per bucket after bucket_counts (drift check)
    sum by (feature, le) (increase(
      coalmine_input_feature_bucket{model="iris",variant="canary",version="v2"}[1m]))

    # canary accuracy from delayed ground truth
    sum(rate(coalmine_feedback_total{variant="canary",result="correct"}[5m]))
      / sum(rate(coalmine_feedback_total{variant="canary"}[5m]))
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

# --- Label names ---------------------------------------------------------------------------

LABEL_MODEL = "model"
"""The served model's name (``--model-name``); the same for stable and canary."""
LABEL_VERSION = "version"
"""The model version (``--model-version``); differs between stable and canary."""
LABEL_VARIANT = "variant"
"""``stable`` or ``canary``: which side of the rollout this pod serves."""
LABEL_REVISION = "revision"
"""The ModelDeployment revision (pod template and model) of the pod, on every series; on the
feedback metrics, that of the pod that made the prediction (from its receipt). A retried
canary of the same version is a new revision, so its counts start from zero rather than
adding to its predecessor's."""
LABEL_OUTCOME = "outcome"
"""Result class of one inference request, one of :class:`Outcome`."""
LABEL_CLASS = "class"
"""Predicted class of a classifier, as a string (bounded, see ``MAX_CLASS_LABEL_VALUES``)."""
LABEL_RESULT = "result"
"""Feedback join result for a classifier: ``correct`` or ``incorrect``."""
LABEL_REASON = "reason"
"""Why a label was not joined: one of :class:`FeedbackMissReason`."""
LABEL_FORMAT = "format"
"""Artifact format: ``onnx``, ``skops`` or ``joblib``."""
LABEL_KIND = "kind"
"""Kind of injected fault: ``error`` or ``latency``."""
LABEL_SHA256 = "sha256"
"""Verified sha256 of the artifact (hex), so a dashboard can tell which bytes are live."""
LABEL_FEATURE = "feature"
"""Name of an input feature the server buckets (only those ``--input-features`` names)."""
LABEL_CANARY_REVISION = "canary_revision"
"""On the shadow metrics of a stable pod: the revision of the canary its mirrored requests
went to, so the operator reads one canary's agreement and never its predecessor's."""

BASE_LABELS: tuple[str, ...] = (LABEL_MODEL, LABEL_VERSION, LABEL_VARIANT, LABEL_REVISION)
"""Every metric carries these, so every query can split by version, variant and revision."""
ORIGIN_LABELS: tuple[str, ...] = BASE_LABELS
"""The feedback metrics' labels: those of the pod that MADE the prediction, read from its
receipt, whichever pod the label reached."""


class ModelFormat(StrEnum):
    """How the artifact is serialised; decides the serving runtime."""

    ONNX = "onnx"
    SKOPS = "skops"
    JOBLIB = "joblib"  # pickle underneath: executes code on load, so off unless allow_pickle


# --- URIs in messages: never their credentials ---------------------------------------------

REDACTED = "REDACTED"
_URI_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


def redact_uri(uri: str) -> str:
    """``uri`` as it may appear in an error, a log line or a status: without userinfo
    (``user:password@``) and with the query replaced, since presigned S3/GCS/Azure URLs carry
    their signature (``X-Amz-Signature``, ``sig``) there. The host and path stay, so a
    message still says which artifact failed.

    >>> redact_uri("https://u:pw@bucket.s3.example/m.onnx?X-Amz-Signature=abc#frag")
    'https://REDACTED@bucket.s3.example/m.onnx?REDACTED'
    """
    try:
        parts = urlsplit(uri)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = REDACTED if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_text(text: str) -> str:
    """Every URI inside ``text`` redacted (for messages built from other libraries' errors)."""
    return _URI_IN_TEXT.sub(lambda match: redact_uri(match.group(0)), text)


def split_csv(value: object) -> object:
    """A list setting written ``a, b,c`` becomes ``["a", "b", "c"]``; non-strings pass as is.

    Both processes read list flags and env vars this way (JSON inside YAML inside Helm is
    painful), and the operator's pod specs pass lists to the server in this form. Settings use
    it as a pydantic ``BeforeValidator`` on fields marked ``NoDecode``.
    """
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


# --- Input features: which columns the server buckets, written in one flag ------------------
MAX_INPUT_FEATURES = 16
"""Features one server buckets: with at most 21 buckets each, 336 series per pod at most."""
MAX_INPUT_FEATURE_EDGES = 20
MAX_INPUT_FEATURE_INDEX = 999_999
FEATURE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]{0,62}$"
"""A feature name: a safe label value, and free of the flag's separators (``= : , ;``)."""


@dataclass(frozen=True)
class InputFeature:
    """One input column the server buckets: ``name`` (the ``feature`` label), its ``index``
    in a request's rows, and the buckets' upper ``edges`` (strictly increasing; +Inf is
    implied, and a value equal to an edge falls in that edge's bucket, as ``le`` says)."""

    name: str
    index: int
    edges: tuple[float, ...]


def format_input_features(features: list[InputFeature]) -> str:
    """The ``--input-features`` text: ``name=index:edge,edge;...``, sorted by name so the
    same features always give the same pod spec.

    >>> format_input_features([InputFeature("petal_width", 3, (0.5, 1.5)),
    ...                        InputFeature("sepal_length", 0, (5.0, 6.5))])
    'petal_width=3:0.5,1.5;sepal_length=0:5.0,6.5'
    """
    return ";".join(
        f"{f.name}={f.index}:{','.join(repr(float(e)) for e in f.edges)}"
        for f in sorted(features, key=lambda f: f.name)
    )


def parse_input_features(text: str) -> list[InputFeature]:
    """The features of an ``--input-features`` text; ValueError says which part is wrong.

    >>> parse_input_features("petal_width=3:0.5, 1")
    [InputFeature(name='petal_width', index=3, edges=(0.5, 1.0))]
    """
    features = [_parse_feature(part.strip()) for part in text.split(";") if part.strip()]
    if len(features) > MAX_INPUT_FEATURES:
        raise ValueError(f"input features: {len(features)} given, at most {MAX_INPUT_FEATURES}")
    for what, keys in (
        ("name", [f.name for f in features]),
        ("index", [str(f.index) for f in features]),
    ):
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"input features: {what} {', '.join(repeated)} given twice")
    return features


def _parse_feature(part: str) -> InputFeature:
    match = re.fullmatch(r"([^=]*)=([^:]*):(.*)", part)
    if match is None:
        raise ValueError(f"input feature {part!r}: write name=index:edge,edge,...")
    name, index, edges_text = (group.strip() for group in match.groups())
    if not re.fullmatch(FEATURE_NAME_PATTERN, name):
        raise ValueError(f"input feature {part!r}: name must match {FEATURE_NAME_PATTERN}")
    if not re.fullmatch("[0-9]{1,7}", index) or int(index) > MAX_INPUT_FEATURE_INDEX:
        raise ValueError(
            f"input feature {name}: index {index!r} is not 0..{MAX_INPUT_FEATURE_INDEX}"
        )
    try:
        edges = tuple(float(e) for e in edges_text.split(","))
    except ValueError:
        raise ValueError(f"input feature {name}: edges {edges_text!r} are not numbers") from None
    if len(edges) > MAX_INPUT_FEATURE_EDGES:
        raise ValueError(
            f"input feature {name}: {len(edges)} edges, at most {MAX_INPUT_FEATURE_EDGES}"
        )
    if not all(map(math.isfinite, edges)):
        raise ValueError(f"input feature {name}: edges must be finite numbers")
    if any(a >= b for a, b in itertools.pairwise(edges)):
        raise ValueError(f"input feature {name}: edges must be strictly increasing")
    return InputFeature(name, int(index), edges)


class Variant(StrEnum):
    """Which side of a canary rollout a pod serves."""

    STABLE = "stable"
    CANARY = "canary"


class Outcome(StrEnum):
    """Outcome of an inference request; 4xx, 5xx and refusals for load are kept apart on
    purpose: a flood of requests the pod could not take is saturation, not a bad model, and
    must neither roll back a good canary through the error rate nor hide in it."""

    SUCCESS = "success"
    CLIENT_ERROR = "client_error"  # 4xx: bad input, unknown model, body too large
    SERVER_ERROR = "server_error"  # 5xx: model failed, internal error, injected fault
    SHED = "shed"  # 503: refused at admission (concurrency limit) or model not ready
    TIMEOUT = "timeout"  # 504: past the request deadline


SATURATION_OUTCOMES: tuple[Outcome, ...] = (Outcome.SHED, Outcome.TIMEOUT)
"""Requests the pod could not serve for load: the saturation check's numerator, and outside
the error rate's and latency's counts."""


def outcome_of(status: int) -> Outcome:
    """The outcome a response status counts under.

    >>> [outcome_of(s).value for s in (200, 400, 500, 503, 504)]
    ['success', 'client_error', 'server_error', 'shed', 'timeout']
    """
    if status < 400:
        return Outcome.SUCCESS
    if status < 500:
        return Outcome.CLIENT_ERROR
    return {503: Outcome.SHED, 504: Outcome.TIMEOUT}.get(status, Outcome.SERVER_ERROR)


class FeedbackResult(StrEnum):
    """Whether a classifier's stored prediction matched the delayed true label."""

    CORRECT = "correct"
    INCORRECT = "incorrect"


class FeedbackMissReason(StrEnum):
    """Why a label was not joined with its prediction (each answered with a 4xx)."""

    FORGED = "forged"  # not a receipt this deployment signed, or altered (403)
    UNKNOWN = "unknown"  # signed with a key this pod does not know: retired, or foreign (404)
    DUPLICATE = "duplicate"  # this prediction already has a label (409)
    EXPIRED = "expired"  # later than the feedback horizon (410)


class MetricKind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class MetricSpec:
    """One exported metric.

    ``name`` is the name as exposed and as used in PromQL (counters end in ``_total``;
    histograms expose ``name_bucket``, ``name_sum`` and ``name_count``).
    """

    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()

    def series(self, suffix: str = "") -> str:
        """Series name for PromQL, e.g. ``REQUEST_DURATION.series("bucket")``."""
        return f"{self.name}_{suffix}" if suffix else self.name


# --- Buckets -------------------------------------------------------------------------------
# Latency buckets resolve single milliseconds at the low end because a small model's whole
# request takes about 1 ms; the top (10 s) covers the default per-request timeout.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05,
    0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
COMPUTE_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0,
)  # fmt: skip
PREDICTION_VALUE_BUCKETS: tuple[float, ...] = (
    -1000.0, -100.0, -10.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0,
    1000.0,
)  # fmt: skip
"""Default regressor output buckets; override per deployment with
``COALMINE_SERVING_PREDICTION_BUCKETS`` (stable and canary must use the same list)."""
ABS_ERROR_BUCKETS: tuple[float, ...] = (
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0,
)  # fmt: skip
"""Default buckets for ``|prediction - truth|``; override with
``COALMINE_SERVING_ABS_ERROR_BUCKETS``."""

MAX_FEEDBACK_ORIGINS = 32
"""Distinct (version, variant, revision) origins a pod keeps feedback series for; a rollout
has two, so this covers every version whose labels are still within the horizon."""

MAX_CLASS_LABEL_VALUES = 64
"""Distinct ``class`` label values per process; further classes count as ``OTHER_CLASS`` so a
model with free-form outputs cannot blow up Prometheus cardinality."""
OTHER_CLASS = "__other__"

# --- Metrics -------------------------------------------------------------------------------

REQUESTS_TOTAL = MetricSpec(
    "coalmine_requests_total",
    MetricKind.COUNTER,
    "Inference requests by outcome (success, client_error, server_error, shed, timeout).",
    (*BASE_LABELS, LABEL_OUTCOME),
)
"""One increment per inference request (V2 infer or V1 predict), after it finished. Health,
metadata, metrics and feedback requests are not counted, so the error ratio is about
predictions only."""

REQUEST_DURATION = MetricSpec(
    "coalmine_request_duration_seconds",
    MetricKind.HISTOGRAM,
    "Wall time of successful inference requests from routing to response.",
    BASE_LABELS,
    LATENCY_BUCKETS,
)
"""Server-side latency of successful inference requests, including decode, queueing for a
worker thread, compute and encode. Failed requests are left out: a fast refusal would pull
the quantile down and a deadline hit would pin it at the timeout (those are counted by
outcome in ``REQUESTS_TOTAL``)."""

MODEL_COMPUTE = MetricSpec(
    "coalmine_model_compute_seconds",
    MetricKind.HISTOGRAM,
    "Time spent inside the model runtime's predict call.",
    BASE_LABELS,
    COMPUTE_BUCKETS,
)
"""Only the runtime's predict, so the operator can tell a slower model from a slower server."""

REQUESTS_IN_FLIGHT = MetricSpec(
    "coalmine_requests_in_flight",
    MetricKind.GAUGE,
    "Inference requests currently being processed.",
    BASE_LABELS,
)

MODEL_INFO = MetricSpec(
    "coalmine_model_info",
    MetricKind.GAUGE,
    "Always 1; labels identify the loaded artifact.",
    (*BASE_LABELS, LABEL_FORMAT, LABEL_SHA256),
)

MODEL_READY = MetricSpec(
    "coalmine_model_ready",
    MetricKind.GAUGE,
    "1 once the model is loaded and a warm-up prediction succeeded, else 0.",
    BASE_LABELS,
)

MODEL_LOAD_SECONDS = MetricSpec(
    "coalmine_model_load_seconds",
    MetricKind.GAUGE,
    "Seconds spent verifying, loading and warming up the model.",
    BASE_LABELS,
)

PREDICTIONS_TOTAL = MetricSpec(
    "coalmine_predictions_total",
    MetricKind.COUNTER,
    "Classifier outputs by predicted class (one per row).",
    (*BASE_LABELS, LABEL_CLASS),
)
"""Class distribution per version: the operator compares canary vs stable shares."""

PREDICTION_VALUE = MetricSpec(
    "coalmine_prediction_value",
    MetricKind.HISTOGRAM,
    "Regressor outputs (one observation per row).",
    BASE_LABELS,
    PREDICTION_VALUE_BUCKETS,
)

FEEDBACK_TOTAL = MetricSpec(
    "coalmine_feedback_total",
    MetricKind.COUNTER,
    "Classifier labels joined with their prediction's receipt: correct or incorrect.",
    (*ORIGIN_LABELS, LABEL_RESULT),
)
"""Counted under the labels of the pod that made the prediction (from the receipt), so a
label that reached any pod counts for the version and revision that predicted."""

FEEDBACK_ABS_ERROR = MetricSpec(
    "coalmine_feedback_abs_error",
    MetricKind.HISTOGRAM,
    "Regressor labels: absolute error between the receipt's prediction and the true value.",
    ORIGIN_LABELS,
    ABS_ERROR_BUCKETS,
)

FEEDBACK_UNMATCHED_TOTAL = MetricSpec(
    "coalmine_feedback_unmatched_total",
    MetricKind.COUNTER,
    "Labels not joined, by reason (forged, unknown, duplicate, expired).",
    (*BASE_LABELS, LABEL_REASON),
)
"""Counted under the labels of the pod the label reached (a rejected label's origin cannot be
trusted). ``expired`` rising means the horizon is shorter than the label delay; ``forged`` or
``duplicate`` rising means a client is sending what it should not."""

INPUT_FEATURE = MetricSpec(
    "coalmine_input_feature",
    MetricKind.HISTOGRAM,
    "Input feature values (one observation per row), only for the --input-features columns.",
    (*BASE_LABELS, LABEL_FEATURE),
)
"""Buckets per feature come from ``--input-features``, the same on stable and canary (the
operator writes one flag for both from its drift checks), so their distributions compare."""

INJECTED_FAULTS_TOTAL = MetricSpec(
    "coalmine_injected_faults_total",
    MetricKind.COUNTER,
    "Faults added on purpose by the fault-injection settings (kind: error or latency).",
    (*BASE_LABELS, LABEL_KIND),
)
"""Non-zero only in chaos drills; lets a post-mortem tell a drill from a real regression."""


class ShadowResult(StrEnum):
    """How one mirrored row's two answers compared (``result`` of the shadow comparisons)."""

    AGREE = "agree"
    """The same class (classifier), or exactly the same value (regressor)."""
    DISAGREE = "disagree"


class MirrorResult(StrEnum):
    """What became of one request the stable pod chose to mirror (``result``)."""

    COMPARED = "compared"
    """The canary answered 200 and its answer was compared, row by row."""
    DROPPED = "dropped"
    """The mirror queue was full: never sent (the client's request did not wait for it)."""
    FAILED = "failed"
    """Sent, but the canary refused, failed, timed out or answered something unreadable."""


SHADOW_COMPARED_TOTAL = MetricSpec(
    "coalmine_shadow_compared_total",
    MetricKind.COUNTER,
    "Rows a stable pod mirrored to the canary and compared, by result (agree, disagree).",
    (*BASE_LABELS, LABEL_CANARY_REVISION, LABEL_RESULT),
)
"""Exported by stable pods while they mirror (the base labels are the stable pod's own); the
``agreement`` check reads it for the canary revision it judges."""

SHADOW_ABS_DIFF_TOTAL = MetricSpec(
    "coalmine_shadow_abs_diff_total",
    MetricKind.COUNTER,
    "Sum over compared rows of |canary answer - stable answer| (regressors).",
    (*BASE_LABELS, LABEL_CANARY_REVISION),
)
"""Divided by the compared rows, the mean absolute difference the ``agreement`` check bounds."""

SHADOW_MIRRORED_TOTAL = MetricSpec(
    "coalmine_shadow_mirrored_total",
    MetricKind.COUNTER,
    "Requests a stable pod chose to mirror to the canary, by result (compared, dropped, failed).",
    (*BASE_LABELS, LABEL_CANARY_REVISION, LABEL_RESULT),
)
"""Dropped and failed mirrors never touch the client's request; they are counted here."""

SHADOW_METRICS: tuple[MetricSpec, ...] = (
    SHADOW_COMPARED_TOTAL,
    SHADOW_ABS_DIFF_TOTAL,
    SHADOW_MIRRORED_TOTAL,
)
"""Exported only by a stable pod with a mirror target (so not in ``ALL_METRICS``, which every
server exports from its start)."""

MIRROR_HEADER = "coalmine-mirror"
"""Set (to ``1``) on every request a stable pod mirrors, so a canary's logs can tell them apart."""

ALL_METRICS: tuple[MetricSpec, ...] = (
    REQUESTS_TOTAL,
    REQUEST_DURATION,
    MODEL_COMPUTE,
    REQUESTS_IN_FLIGHT,
    MODEL_INFO,
    MODEL_READY,
    MODEL_LOAD_SECONDS,
    PREDICTIONS_TOTAL,
    PREDICTION_VALUE,
    FEEDBACK_TOTAL,
    FEEDBACK_ABS_ERROR,
    FEEDBACK_UNMATCHED_TOTAL,
    INPUT_FEATURE,
    INJECTED_FAULTS_TOTAL,
)
"""Every metric the server exports; the contract test checks each one."""

METRICS_PATH = "/metrics"
"""Where the server exposes Prometheus text format (same port as inference)."""
