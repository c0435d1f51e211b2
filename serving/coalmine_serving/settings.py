"""Server settings: flags and ``COALMINE_SERVING_*`` environment variables.

Built by :func:`load_settings` (or by the CLI), never at import time, so tests can make as many
differently configured apps as they like in one process.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from coalmine_serving import contract
from coalmine_serving.contract import ModelFormat

# Lists in flags and env vars are written ``a,b,c``, not JSON: NoDecode keeps pydantic-settings
# from parsing them as JSON, and this validator splits them (see contract.split_csv).
_CSV = BeforeValidator(contract.split_csv)


def _input_features(value: object) -> object:
    """``--input-features`` has a syntax of its own, parsed and checked by the contract; a
    list given in code goes through the same checks."""
    if isinstance(value, list) and all(isinstance(f, contract.InputFeature) for f in value):
        value = contract.format_input_features(value)
    return contract.parse_input_features(value) if isinstance(value, str) else value


_FEATURES = BeforeValidator(_input_features)


class Task(StrEnum):
    AUTO = "auto"  # decided from the artifact: classes_ / integer or string output = classifier
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class ServingSettings(BaseSettings):
    """Everything that configures one inference server process."""

    model_config = SettingsConfigDict(
        env_prefix="COALMINE_SERVING_",
        extra="forbid",
        protected_namespaces=(),
        use_attribute_docstrings=True,
    )

    # --- identity: these become the model/version/variant metric labels ---
    model_name: str = Field("model", min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")
    """Name clients address (``/v2/models/{name}``) and the ``model`` metric label."""
    model_version: str = Field("1", min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")
    """Version served (``/v2/models/{name}/versions/{version}``) and the ``version`` label."""
    variant: contract.Variant = contract.Variant.STABLE
    """Which side of the rollout this pod serves; the ``variant`` metric label."""
    revision: str = Field("", max_length=64, pattern=r"^[A-Za-z0-9_.\-]*$")
    """The ModelDeployment revision this pod serves; the ``revision`` label of every series
    (so a retried canary of the same version starts from zero counts) and stamped into every
    prediction receipt, so labels count for the revision that predicted."""

    # --- artifact ---
    model_uri: str | None = None
    """Local path or ``file://`` URI of the artifact (use ``coalmine-serve fetch`` for remote)."""
    model_format: ModelFormat = ModelFormat.ONNX
    """Runtime to load the artifact with: ``onnx``, ``skops`` or ``joblib``."""
    sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    """Expected sha256 of the artifact; verified before any byte is deserialised."""
    require_sha256: bool = True
    """Refuse to load an artifact without ``sha256``. Turn off only for local experiments."""
    task: Task = Task.AUTO
    """Classification or regression; decides which prediction and feedback metrics apply."""
    allow_pickle: bool = False
    """Allow the ``joblib`` format. Pickle runs arbitrary code from the artifact on load, so
    this must be a deliberate, cluster-level decision; off by default."""
    skops_trusted_types: Annotated[list[str], NoDecode, _CSV] = Field(default_factory=list)
    """Extra types skops may load, e.g. ``sklearn.ensemble._forest.RandomForestClassifier``.
    Comes only from here, never from the artifact itself (see MLflow #25686)."""

    # --- network ---
    host: str = "0.0.0.0"  # a pod must listen on its own IP
    """Address to bind."""
    port: int = Field(8080, ge=1, le=65535)
    """Port for inference, health and ``/metrics``."""
    metrics_port: int | None = Field(None, ge=1, le=65535)
    """Also serve ``/metrics`` and the health probes on this port (for a NetworkPolicy that lets
    only Prometheus reach it). Unset: they are served on ``port`` only. ``/metrics`` stays on
    ``port`` too, so existing scrape configs keep working."""

    # --- limits for hostile input and overload ---
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    """Largest request body; larger ones get 413 before any parsing (Content-Length or chunked)."""
    max_rows: int = Field(10_000, ge=1)
    """Most rows (first tensor dimension) in one request; more gets 413."""
    max_concurrency: int = Field(64, ge=1)
    """Inference requests processed at once; more get 503 at once instead of queueing memory."""
    request_timeout_seconds: float = Field(10.0, gt=0)
    """Deadline for one inference request; past it the client gets 504."""
    header_timeout_seconds: float = Field(10.0, gt=0, le=300)
    """Time a client has to send a request's line and headers, from connecting (or from the
    first byte of a later request on the connection); past it, 408 and the socket is closed.
    Sockets idle between requests are closed after 30 s."""
    max_header_bytes: int = Field(32 * 1024, ge=1024, le=1024 * 1024)
    """Largest request line plus headers; larger gets 431 and the socket is closed."""
    refused_body_drain_bytes: int = Field(64 * 1024 * 1024, ge=0)
    """After answering before the body was read (a 413), read and drop at most this much of
    what the client still sends, so a client that writes its whole body before reading (urllib,
    curl) gets the answer; then close. Bounds what a huge body costs the pod."""
    refused_body_drain_seconds: float = Field(10.0, ge=0, le=300)
    """And for at most this long."""
    predict_threads: int = Field(2, ge=1, le=64)
    """Worker threads for predict, so CPU-bound models never block the event loop."""
    inline_predict_max_seconds: float = Field(0.0002, ge=0.0, le=0.01)
    """Models whose predict is measured faster than this run on the event loop thread: handing
    20 µs of work to a thread costs more than the work (a context switch each way and a wait
    for the GIL). Only requests of at most 32 rows run inline; when most predicts of a window
    of 32 are slower than this, the server moves to the thread pool for good. 0 = always use
    the thread pool."""

    # --- delayed ground truth: signed receipts, joined on any pod ---
    receipt_keys_file: Path | None = None
    """JSON file of receipt keys (``{"keys": [{"id", "secret", "activeFrom"}]}``, a mounted
    Secret the operator manages). The newest active key signs, every key verifies; the file is
    re-read when it changes. Unset: an ephemeral key, so labels join only on this process."""
    feedback_horizon_seconds: float = Field(172_800.0, gt=0, le=90 * 86_400)
    """How long after a prediction its true label is still accepted (receipts carry their
    issue time); older labels are refused as ``expired``."""
    feedback_dedupe_entries: int = Field(500_000, ge=1)
    """Receipts this pod remembers having joined, so a second label for the same prediction is
    refused as ``duplicate``. When full the oldest are forgotten, and receipts issued before
    the newest forgotten one are refused as ``expired``: never counted twice."""
    feedback_max_batch: int = Field(10_000, ge=1)
    """Most labels in one feedback request (``{"labels": [...]}``); more gets 413."""

    # --- shadow traffic: stable pods mirror a share of requests to the canary ---
    mirror_config_file: Path | None = None
    """JSON file naming where to mirror (``{"url", "share", "canaryRevision"}``), written by
    the operator into a mounted Secret and re-read every second, so a shadow step starts and
    stops without restarting this pod. Only a ``stable`` server mirrors; a missing file, an
    empty object or ``share`` 0 mean no mirroring."""
    mirror_queue_size: int = Field(256, ge=1, le=100_000)
    """Mirrored requests waiting to be sent; when full, more are dropped (and counted), never
    waited for."""
    mirror_concurrency: int = Field(8, ge=1, le=256)
    """Mirrored requests in flight to the canary at once."""
    mirror_timeout_seconds: float = Field(2.0, gt=0, le=60)
    """Longest wait for the canary's answer to one mirrored request; past it, a failure."""

    # --- metric buckets (stable and canary must agree, so set them in the deployment) ---
    prediction_buckets: Annotated[list[float], NoDecode, _CSV] = Field(
        default_factory=lambda: list(contract.PREDICTION_VALUE_BUCKETS)
    )
    """Buckets of ``coalmine_prediction_value`` for regressors (comma separated)."""
    abs_error_buckets: Annotated[list[float], NoDecode, _CSV] = Field(
        default_factory=lambda: list(contract.ABS_ERROR_BUCKETS)
    )
    """Buckets of ``coalmine_feedback_abs_error`` (comma separated)."""
    input_features: Annotated[list[contract.InputFeature], NoDecode, _FEATURES] = Field(
        default_factory=list
    )
    """Input columns to bucket into ``coalmine_input_feature``, for drift checks on inputs:
    ``name=index:edge,edge,...`` joined by ``;`` (e.g. ``sepal_length=0:5,6;petal_width=3:1``).
    At most 16 features of at most 20 strictly increasing edges; names and indices unique.
    The operator writes it from the drift checks, the same for stable and canary."""

    # --- fault injection: for chaos drills and our own rollback tests; off by default ---
    fault_error_rate: float = Field(0.0, ge=0.0, le=1.0)
    """Share of inference requests answered with an injected 500 (counted as server_error)."""
    fault_latency_seconds: float = Field(0.0, ge=0.0, le=60.0)
    """Extra latency added to inference requests (subject to the request timeout)."""
    fault_latency_rate: float = Field(1.0, ge=0.0, le=1.0)
    """Share of inference requests that get ``fault_latency_seconds`` added."""

    # --- logging ---
    log_level: str = "info"
    """uvicorn log level."""
    access_log: bool = False
    """Per-request access log lines; off because they cost more than a small model's predict."""

    @model_validator(mode="after")
    def _check_consistency(self) -> ServingSettings:
        if self.model_format is ModelFormat.JOBLIB and not self.allow_pickle:
            raise ValueError(
                "model_format=joblib needs allow_pickle=true: loading a pickle runs code from the "
                "artifact; prefer onnx or skops"
            )
        return self

    def model_path(self) -> Path:
        """The artifact as a local path (``file://`` stripped)."""
        if not self.model_uri:
            raise ValueError("model_uri is not set")
        uri = self.model_uri
        if uri.startswith("file://"):
            uri = uri[len("file://") :]
        elif "://" in uri:
            raise ValueError(
                f"model_uri {contract.redact_uri(uri)!r} is not local: run `coalmine-serve "
                "fetch` first"
            )
        return Path(uri)


def load_settings(**overrides: object) -> ServingSettings:
    """Settings from the environment, with explicit overrides (e.g. CLI flags) on top."""
    return ServingSettings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
