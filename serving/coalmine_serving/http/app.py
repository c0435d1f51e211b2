"""The ASGI application factory. Nothing is built or loaded at import time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from coalmine_serving.contract import METRICS_PATH
from coalmine_serving.errors import ServingError
from coalmine_serving.http.fastpath import InferenceFastPath
from coalmine_serving.http.guards import ALWAYS_SERVED
from coalmine_serving.http.routes import Routes, error_response
from coalmine_serving.metrics import ServingMetrics
from coalmine_serving.runtimes.base import ModelRuntime
from coalmine_serving.runtimes.loader import LoadedModel
from coalmine_serving.service.inference import InferenceService
from coalmine_serving.settings import ServingSettings

_MODEL = "/v2/models/{name}"
_VERSION = "/v2/models/{name}/versions/{version}"


def create_app(
    settings: ServingSettings, model: LoadedModel | ModelRuntime | None = None
) -> ServingApp:
    """Build the server. ``model`` skips loading from ``settings.model_uri`` (tests, CLI).

    Loading and warm-up run in the background after startup, so liveness answers at once and
    readiness turns true only when a warm-up prediction has succeeded.
    """
    service = InferenceService(settings, ServingMetrics(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loading = asyncio.create_task(service.predictor.load(model))
        if service.mirror is not None:
            service.mirror.start()
        try:
            yield
        finally:
            loading.cancel()
            if service.mirror is not None:
                await service.mirror.close()
            if isinstance(app, ServingApp):
                app.fast_path.close()
            service.predictor.close()

    app = ServingApp(
        routes=_routes(Routes(service)),
        lifespan=lifespan,
        exception_handlers={ServingError: _serving_error, HTTPException: _http_error},
    )
    app.state.service = service
    app.fast_path = InferenceFastPath(super(ServingApp, app).__call__, service)
    return app


def internal_app(app: ServingApp) -> ASGIApp:
    """What ``--metrics-port`` serves: ``/metrics`` and the health probes of ``app``, 404 for
    anything else, so a NetworkPolicy can open that port to Prometheus and the kubelet only."""

    async def internal(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in ALWAYS_SERVED:
            response = JSONResponse({"detail": "Not Found"}, 404)
            await response(scope, receive, send)
            return
        await app(scope, receive, send)

    return internal


class ServingApp(Starlette):
    """Starlette, except that inference requests skip it entirely.

    Starlette's middleware stack, routing and Request/Response objects cost more than a small
    model's predict, so POSTs to the infer/predict URLs go straight to
    :class:`InferenceFastPath`; it hands everything else back to Starlette.
    """

    fast_path: InferenceFastPath

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.fast_path(scope, receive, send)


async def _serving_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServingError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    # Unknown paths and methods answer {"detail": "Not Found"} as JSON (the shape clients of
    # earlier, FastAPI-based releases saw), not Starlette's plain-text default.
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, exc.status_code, exc.headers)


def _routes(routes: Routes) -> list[Route]:
    get, post = ["GET"], ["POST"]
    table = [
        Route("/v2/health/live", routes.live, methods=get),
        Route("/v2/health/ready", routes.ready, methods=get),
        Route("/v2", routes.server_metadata, methods=get),
    ]
    for prefix in (_MODEL, _VERSION):
        table += [
            Route(prefix, routes.model_metadata, methods=get),
            Route(f"{prefix}/ready", routes.model_ready, methods=get),
            Route(f"{prefix}/feedback", routes.feedback, methods=post),
        ]
    table += [
        Route("/v1/models/{name}", routes.v1_model, methods=get),
        Route(METRICS_PATH, routes.metrics_text, methods=get),
    ]
    return table
