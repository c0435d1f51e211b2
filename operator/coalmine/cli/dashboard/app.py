"""The dashboard's HTTP side: a static page and read-only JSON, bound to loopback.

Routes (GET and HEAD only; there is no endpoint that changes anything):

- ``/``: the page; ``/static/...``: its script and style (package data, no build step).
- ``/api/deployments``: every ModelDeployment's row (from the last poll).
- ``/api/deployments/{namespace}/{name}``: one rollout: steps, weight over time, each
  check's value against its bound over time, the last decision. 400 for a name that
  cannot be one, 404 for one that does not exist, 403 when RBAC says no, 502 when the API
  server cannot be reached; never a 500 for any of those.

Every answer carries a Content-Security-Policy allowing only this origin's script and
style (no inline script: a name that got through as HTML still could not run), nosniff, and
no framing. The Host header must name the address served (a DNS-rebinding page cannot read
the JSON through its own domain).
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, Protocol

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coalmine.analysis.scope import Scope as QueryScope
from coalmine.analysis.scope import SideScope
from coalmine.api import RevisionRef
from coalmine.cli.cluster import FORBIDDEN, NOT_FOUND, CliError
from coalmine.cli.dashboard import series, view
from coalmine.cli.dashboard.memory import LIVE, Memory, Remembered
from coalmine.cli.render import read_status

SERIES_TTL = 4.0
"""Seconds a rollout's Prometheus charts are reused: several open tabs polling every few
seconds cost one set of range queries, not one each."""
LOOKBACK = timedelta(minutes=10)
"""How far before a finished rollout the charts start when the dashboard did not see it run."""
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class Source(Protocol):
    """The cluster as the dashboard reads it; every failure is a ``CliError`` in words."""

    def list_all(self) -> list[dict[str, Any]]: ...

    def get(self, namespace: str, name: str) -> dict[str, Any]: ...

    def events(self, namespace: str, name: str) -> list[dict[str, Any]] | None: ...


@dataclass
class Settings:
    prometheus: str | None = None
    """``--prometheus``; else each object's ``analysis.prometheus.address``, if it has one."""
    namespace_label: str = "namespace"
    interval: float = 3.0


class Dashboard:
    """The state behind the routes: the last list, what was seen over time, cached charts."""

    def __init__(
        self,
        source: Source,
        settings: Settings,
        fetcher: Callable[[str], series.RangeFetch],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.source, self.settings, self._fetcher, self._now = source, settings, fetcher, now
        self.memory = Memory()
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._error: str | None = None
        self._polled_at: datetime | None = None
        self._charts: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}

    def poll(self) -> None:
        """List every ModelDeployment once and remember what each shows now."""
        now = self._now()
        try:
            objects = self.source.list_all()
        except CliError as error:
            with self._lock:
                self._error, self._polled_at = error.message, now
            return
        rows = []
        with self._lock:
            for obj in objects:
                self._record(obj, now)
                rows.append(_row(obj))
            self.memory.forget_others(objects)
            self._rows, self._error, self._polled_at = rows, None, now

    def overview(self) -> dict[str, Any]:
        with self._lock:
            return {
                "items": sorted(self._rows, key=lambda r: (r["namespace"], r["name"])),
                "error": self._error,
                "polledAt": view.iso(self._polled_at),
            }

    def one(self, namespace: str, name: str) -> dict[str, Any]:
        """The detail of one rollout (raises ``CliError`` when it cannot be read)."""
        obj = self.source.get(namespace, name)
        events = self.source.events(namespace, name)
        now = self._now()
        with self._lock:
            self._record(obj, now)
            remembered = self.memory.recall(obj)
        charts = self._cached_charts(obj, remembered, now)
        return view.detail(obj, events, remembered.as_json(), charts, now)

    def _record(self, obj: dict[str, Any], now: datetime) -> None:
        # A status this plugin cannot read is not remembered: its row says so (``_row``).
        with contextlib.suppress(ValidationError):
            self.memory.record(obj, now)

    def _cached_charts(
        self, obj: dict[str, Any], remembered: Remembered, now: datetime
    ) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        with self._lock:
            cached = self._charts.get(key)
        if cached is not None and now.timestamp() - cached[0] < SERIES_TTL:
            return cached[1]
        charts = self.charts(obj, remembered, now)
        with self._lock:
            self._charts[key] = (now.timestamp(), charts)
        return charts

    def charts(self, obj: dict[str, Any], remembered: Remembered, now: datetime) -> dict[str, Any]:
        """Each check over the running (or last seen) rollout, from Prometheus."""
        strategy = view.canary_strategy(obj)
        address = self.settings.prometheus or (
            strategy.analysis.prometheus.address if strategy else None
        )
        subject = chart_subject(obj, remembered, now)
        base: dict[str, Any] = {"prometheus": address, "charts": [], "error": None}
        if strategy is None:
            return {**base, "error": "the spec does not parse with this plugin version"}
        if address is None:
            return {**base, "error": "no Prometheus: pass --prometheus URL"}
        if subject is None:
            return {**base, "error": "no rollout to chart yet"}
        canary, stable, start, end = subject
        meta = obj.get("metadata") or {}
        model = ((obj.get("spec") or {}).get("model") or {}).get("name", "")

        def side(ref: RevisionRef, variant: str) -> SideScope:
            return series.side_scope(
                model, meta.get("namespace", ""), ref, variant, self.settings.namespace_label
            )

        window = strategy.analysis.query_window()
        scope = QueryScope(
            canary=side(canary, "canary"),
            stable=side(stable, "stable") if stable else None,
            window=window,
        )
        span = series.chart_range(start, end, window)
        charts = series.check_series(self._fetcher(address), scope, strategy.analysis.checks, span)
        return {
            **base,
            "charts": charts,
            "canary": view.revision(canary),
            "stable": view.revision(stable),
            "window": window.total_seconds(),
            "start": view.iso(start),
            "end": view.iso(end),
        }


def chart_subject(
    obj: dict[str, Any], remembered: Remembered, now: datetime
) -> tuple[RevisionRef, RevisionRef | None, datetime, datetime] | None:
    """Which canary and stable to chart, and over what time: the running canary; else the
    last one this dashboard saw run; else the one the rollback record names; else the last
    promoted revision (without a stable side: the status no longer says which it replaced)."""
    status = read_status(obj)
    if status.canary is not None and status.phase in LIVE:
        return status.canary, status.stable, status.canary_started_at or now - LOOKBACK, now
    seen = remembered.rollout
    if seen is not None:
        start = seen.started_at or seen.last_seen - LOOKBACK
        return seen.canary, seen.stable, start, seen.last_seen
    record = status.rollback
    if record is not None:
        kept = status.canary is not None and status.canary.revision == record.revision
        canary = status.canary if kept and status.canary else _ref(record.revision, record.version)
        start = (status.canary_started_at if kept else None) or record.started_at - LOOKBACK
        return canary, status.stable, start, record.completed_at or now
    promoted = [h for h in status.history if h.outcome == "Promoted"]
    if promoted:
        last = promoted[-1]
        return _ref(last.revision, last.version), None, last.at - LOOKBACK, last.at
    return None


def _ref(revision: str, version: str) -> RevisionRef:
    return RevisionRef(revision=revision, version=version, uri="")


def _row(obj: dict[str, Any]) -> dict[str, Any]:
    try:
        return view.summary(obj)
    except ValidationError:
        meta = obj.get("metadata") or {}
        return {
            "namespace": meta.get("namespace", ""),
            "name": meta.get("name", ""),
            "phase": "Unknown",
            "message": "the status does not match this kubectl-coalmine; upgrade the plugin",
        }


def jsonable(value: Any) -> Any:
    """NaN and infinities as null: JSON has no such numbers (the page shows a gap)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(jsonable(body), status_code=status)


HTTP_STATUS = {NOT_FOUND: 404, FORBIDDEN: 403}


def build_app(dashboard: Dashboard, allowed_hosts: list[str], poll: bool = True) -> Starlette:
    """The ASGI app; with ``poll`` a background thread lists the objects every interval."""

    def page(_: Request) -> Response:
        return _static("index.html", "text/html; charset=utf-8")

    def asset(request: Request) -> Response:
        name = request.path_params["asset"]
        kinds = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
        if name not in kinds:
            return _json({"error": "no such file"}, 404)
        return _static(name, kinds[name] + "; charset=utf-8")

    def listing(_: Request) -> Response:
        return _json(dashboard.overview())

    def one(request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        for field, value in (("namespace", namespace), ("name", name)):
            if not _NAME.match(value):
                return _json({"error": f"{field}: not a Kubernetes object name"}, 400)
        try:
            return _json(dashboard.one(namespace, name))
        except CliError as error:
            return _json({"error": error.message}, HTTP_STATUS.get(error.exit_code, 502))
        except ValidationError:
            message = "the object's status does not match this kubectl-coalmine; upgrade it"
            return _json({"error": message}, 502)

    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            dashboard.poll()
            stop.wait(dashboard.settings.interval)

    @asynccontextmanager
    async def lifespan(_: Starlette):  # type: ignore[no-untyped-def]
        worker = threading.Thread(target=loop, name="dashboard-poll", daemon=True)
        if poll:
            worker.start()
        try:
            yield
        finally:
            stop.set()

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/static/{asset}", asset, methods=["GET"]),
        Route("/api/deployments", listing, methods=["GET"]),
        Route("/api/deployments/{namespace}/{name}", one, methods=["GET"]),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def _static(name: str, media_type: str) -> Response:
    body = resources.files("coalmine.cli.dashboard").joinpath("static", name).read_bytes()
    return Response(body, media_type=media_type)


class SecurityHeaders:
    """Adds ``HEADERS`` to every answer, errors included (plain ASGI: no body buffering)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.encode(), v.encode()) for k, v in HEADERS.items()]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)
