"""Operator settings: ``COALMINE_*`` environment variables (the Helm chart sets them).

Built by :func:`load_settings`, never at import time, so tests and the CLI can make their own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from coalmine_serving.contract import split_csv

# Lists in env vars are written ``a,b,c``, as for the model server (see split_csv), not JSON.
_CSV = BeforeValidator(split_csv)


def _seconds_as_number(value: object) -> object:
    """``"120"`` in an env var means 120 seconds (pydantic alone takes numbers or ISO 8601
    text such as ``P30D``, but not digits as text)."""
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+(\.[0-9]+)?\s*", value):
        return float(value)
    return value


# A duration setting: seconds (``120``) or ISO 8601 (``PT2M``, ``P30D``).
_SECONDS = BeforeValidator(_seconds_as_number)

_ENDPOINT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_HTTP_URL = re.compile(r"https?://[^\s,]+")


def _named_urls(value: object) -> object:
    """``a=http://x:9090,b=https://y`` as ``{"a": ..., "b": ...}``; a name is a DNS label
    (what ``prometheus.endpoint`` accepts), ``default`` is the default address's own."""
    if not isinstance(value, str):
        return value
    named: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, sep, url = item.partition("=")
        name, url = name.strip(), url.strip()
        if not sep or not _ENDPOINT_NAME.fullmatch(name) or not _HTTP_URL.fullmatch(url):
            raise ValueError(f"expected name=http(s)://host:port, got {name or item!r}")
        if name == "default" or name in named:
            raise ValueError(f"endpoint name {name!r} is taken (default is the default address)")
        named[name] = url
    return named


_HTTP_URL_PATTERN = r"^https?://[^\s]+$"
NotificationKind = Literal[
    "started", "step", "paused", "promoted", "rolledback", "aborted", "superseded", "failed"
]
NOTIFICATION_KINDS: tuple[NotificationKind, ...] = (
    "started", "step", "paused", "promoted", "rolledback", "aborted", "superseded", "failed",
)  # fmt: skip


class Webhook(BaseModel):
    """One receiver of rollout notifications (an item of ``COALMINE_NOTIFICATION_WEBHOOKS``).

    Only the operator's settings name URLs: a namespace cannot make the operator call one."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    url: Annotated[str | None, Field(pattern=_HTTP_URL_PATTERN)] = None
    url_env: Annotated[str | None, Field(alias="urlEnv")] = None
    """Instead of ``url``: an environment variable holding it (the chart sets it from a
    Secret), for URLs that are themselves a secret, such as Slack's incoming webhooks."""
    format: Literal["json", "cloudevents", "slack"] = "json"
    """``json`` (our payload), ``cloudevents`` (CloudEvents 1.0, structured mode) or
    ``slack`` (``{"text": ...}``, what Slack's and most chat tools' incoming webhooks take)."""
    events: list[NotificationKind] = list(NOTIFICATION_KINDS)
    """Which transitions to send; default all."""
    auth_header_env: Annotated[str | None, Field(alias="authHeaderEnv")] = None
    """Name of an environment variable holding the ``Authorization`` header's value (the chart
    sets it from a Secret), so the secret is never in this setting's text."""
    timeout_seconds: Annotated[float, Field(alias="timeoutSeconds", gt=0, le=30)] = 5.0
    """Per request: connect and answer within this, or the attempt failed."""

    @model_validator(mode="after")
    def _one_url(self) -> Webhook:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("a webhook needs exactly one of url and urlEnv")
        return self

    def resolved_url(self, env: Mapping[str, str]) -> str:
        """The URL, read from ``urlEnv`` when it is there; checked like ``url``."""
        if self.url is not None:
            return self.url
        url = _env(env, self.url_env or "", "urlEnv")
        if not re.fullmatch(_HTTP_URL_PATTERN, url):
            raise ValueError(f"urlEnv {self.url_env}: not an http(s) URL")
        return url

    def auth_headers(self, env: Mapping[str, str]) -> dict[str, str]:
        if self.auth_header_env is None:
            return {}
        return {"Authorization": _env(env, self.auth_header_env, "authHeaderEnv")}


def _env(env: Mapping[str, str], name: str, field: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ValueError(f"notification webhook {field}: environment variable {name} is not set")
    return value


FIELD_MANAGER = "coalmine-operator"
"""Server-side apply field manager: every field the operator writes is owned under this name."""


class OperatorSettings(BaseSettings):
    """Everything that configures the operator process."""

    model_config = SettingsConfigDict(
        env_prefix="COALMINE_",
        # COALMINE_SERVING_* and others share the prefix; they are not ours to reject.
        extra="ignore",
        use_attribute_docstrings=True,
    )

    namespaces: Annotated[list[str], NoDecode, _CSV] = []
    """Namespaces to watch (comma separated); empty means the whole cluster."""

    default_serving_image: str = "coalmine/serving:0.1.0"
    """Image of the model-server pods when ``spec.runtime.image`` is not set."""

    allowed_images: Annotated[list[str], NoDecode, _CSV] = []
    """Images a ModelDeployment may name in ``spec.runtime.image`` besides the default serving
    image (comma separated). An entry is an exact reference (``reg/serving:1.2``), a
    repository (``reg/serving``: any tag or digest of it) or a prefix ending in ``/``
    (``reg/coalmine/``). Empty: only ``defaultServingImage``."""

    allowed_service_accounts: Annotated[list[str], NoDecode, _CSV] = []
    """ServiceAccount names a ModelDeployment may put in ``spec.runtime.serviceAccountName``
    (comma separated). Empty: none, the pods run as their namespace's ``default``. An
    account can carry cloud identity (IRSA, Workload Identity) that webhooks inject into the
    pod, so choosing one is the operator's grant, not the spec author's."""

    max_artifact_bytes: int = Field(20 * 1024**3, ge=1024 * 1024)
    """Largest model artifact the init container fetches; also sizes the pod's ``/models``
    emptyDir, so a fetch cannot fill the node's disk."""

    serve_command: Annotated[list[str], NoDecode, _CSV] = ["coalmine-serve"]
    """Command that starts the model server in the serving image (comma separated)."""

    default_prometheus_address: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] = (
        "http://prometheus-operated.monitoring.svc:9090"
    )
    """The Prometheus endpoint named ``default``: used when a ModelDeployment names none."""

    prometheus_endpoints: Annotated[dict[str, str], NoDecode, BeforeValidator(_named_urls)] = {}
    """More Prometheus servers a ModelDeployment may name in ``prometheus.endpoint``, as
    ``name=url,name=url`` (e.g. one per tenant). No object can query any other URL."""

    prometheus_max_timeout: Annotated[
        timedelta, _SECONDS, Field(ge=timedelta(seconds=1), le=timedelta(seconds=30))
    ] = timedelta(seconds=10)
    """Cap on ``prometheus.timeout``, whatever the object asks (the CRD allows up to 30s)."""

    prometheus_namespace_label: str = "namespace"
    """Series label holding the pod's namespace (set by the scrape config), so two namespaces
    serving the same model name never mix; empty disables namespace scoping."""

    scrape_interval_seconds: float = Field(30.0, gt=0.0, le=3600.0)
    """How often Prometheus scrapes the model pods. A side whose newest sample is older than
    three intervals is stale: its checks are inconclusive, never a pass (the freshness guard)."""

    allow_pickle: bool = False
    """Let ModelDeployments use ``format: joblib`` (pickle: runs code from the artifact on
    load). A cluster-level decision, so it lives here and not in the ModelDeployment."""

    skops_trusted_types: Annotated[list[str], NoDecode, _CSV] = []
    """Types skops models may load besides skops' own defaults. A ModelDeployment's
    ``trustedTypes`` may only narrow this list (name a subset), never add to it."""

    max_replicas: int = Field(50, ge=1, le=1000)
    """Upper bound on the pods of one revision, whatever the spec asks."""

    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    """Request body limit passed to every model server."""

    default_cpu_request: str = "100m"
    """CPU request of model servers whose spec names no resources."""
    default_memory_request: str = "256Mi"
    """Memory request of model servers whose spec names no resources."""
    default_memory_limit: str = "1Gi"
    """Memory limit of model servers whose spec names no resources (a pod without limits can
    starve a node)."""

    tick_seconds: float = Field(5.0, gt=0.0, le=300.0)
    """How often the timer wakes per ModelDeployment; the object's own requeue time (analysis
    interval, step pause) decides whether a wake-up does any work."""

    analysis_budget: Annotated[timedelta, _SECONDS] = Field(timedelta(seconds=20), gt=timedelta(0))
    """Longest one tick waits for its measurements (its checks are queried at once, for twice
    the query timeout, which is cut to half of this): a silent Prometheus delays its own
    objects' ticks by this much and no more. Checks without an answer by then count as
    provider errors."""

    reconcile_workers: int = Field(32, ge=2, le=512)
    """Threads that run reconciles (one per object at a time). Must exceed the objects that
    can be waiting on a slow Prometheus at once, or the others queue behind them; each waits
    at most ``analysis_budget``. A rollback or abort never queries Prometheus at all."""

    receipt_key_rotation: Annotated[
        timedelta, _SECONDS, Field(ge=timedelta(hours=1), le=timedelta(days=365))
    ] = timedelta(days=30)
    """Age of the newest receipt-signing key at which a ModelDeployment gets a new one. Old
    keys stay (verifying) until every receipt they signed is past ``spec.feedback.horizon``."""

    receipt_key_activation_delay: Annotated[
        timedelta, _SECONDS, Field(ge=timedelta(0), le=timedelta(hours=1))
    ] = timedelta(seconds=120)
    """How long a new key waits before pods sign with it. Longer than the kubelet takes to
    update a mounted Secret (about a minute), so every pod can verify a key before any pod
    signs with it."""

    notification_webhooks: list[Webhook] = []
    """Where rollout notifications go, as JSON: ``[{"url": "https://...", "format":
    "cloudevents", "events": ["promoted", "rolledback"], "authHeaderEnv": "HOOK_AUTH"}]``.
    Operator-level only (docs/operator.md, "Notifications")."""

    notification_queue_size: int = Field(256, ge=1, le=100_000)
    """Notifications waiting per webhook; one more is dropped (counted and logged), so a slow
    or dead receiver never holds a tick or grows memory."""

    notification_attempts: int = Field(5, ge=1, le=20)
    """Tries per notification (connection errors, timeouts, 429 and 5xx are retried with
    exponential backoff from 1 s, capped at 30 s); then it is dropped, counted and logged."""

    liveness_port: int = Field(8081, ge=0, le=65535)
    """Port of the ``/healthz`` liveness endpoint (0 disables it)."""

    liveness_stall_seconds: float = Field(120.0, ge=1.0, le=3600.0)
    """``/healthz`` fails when an object's timer has not completed a wake-up, or the event
    loop has not run, for this long. Above ``analysisBudget`` plus a few API timeouts: a
    slow tick is not a stuck one."""

    liveness_watch_grace_seconds: float = Field(60.0, ge=1.0, le=3600.0)
    """``/healthz`` fails when a status the operator wrote has not come back on the watch
    within this long (the watch stream is dead)."""

    leader_election: bool = True
    """Act only while holding the Lease (run several replicas; one acts). Off: this process
    acts alone, unfenced (a local run against a cluster where no operator runs)."""

    leader_election_namespace: str = ""
    """Namespace of the Lease. Empty: ``$POD_NAMESPACE`` (the chart sets it to the release's
    namespace), else the credentials' default namespace."""

    leader_election_lease_name: str = Field("coalmine-operator", min_length=1)
    """Name of the Lease; replicas of one release share it."""

    lease_duration_seconds: float = Field(12.0, ge=2.0, le=300.0)
    """How long a standby waits after the Lease last changed before taking it over. 12, not
    client-go's 15: a takeover lands between this minus and plus one retry period after the
    kill (10-14 s), inside the 15 s target (docs/reliability.md)."""

    renew_deadline_seconds: float = Field(8.0, ge=1.0, le=300.0)
    """How long the leader keeps acting without renewing (less than the lease duration; 4 s
    less keeps the old leader stopped well before any standby may take over)."""

    retry_period_seconds: float = Field(2.0, gt=0.0, le=60.0)
    """How often the leader renews and a standby looks at the Lease."""

    metrics_port: int = Field(8080, ge=0, le=65535)
    """Port of the operator's own Prometheus ``/metrics`` (0 disables it); docs/operator.md
    lists the series."""


def load_settings(**overrides: object) -> OperatorSettings:
    """Settings from the environment, with explicit overrides (e.g. CLI flags) on top."""
    return OperatorSettings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
