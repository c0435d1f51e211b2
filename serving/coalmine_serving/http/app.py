"""The ASGI application factory. Nothing is built or loaded at import time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from coalmine_serving.contract import METRICS_PATH
from coalmine_serving.errors import ServingError
from coalmine_serving.http.fastpath import InferenceFastPath
from coalmine_serving.http.limits import BodySizeLimit
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
) -> FastAPI:
    """Build the server. ``model`` skips loading from ``settings.model_uri`` (tests, CLI).

    Loading and warm-up run in the background after startup, so liveness answers at once and
    readiness turns true only when a warm-up prediction has succeeded.
    """
    service = InferenceService(settings, ServingMetrics(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(service.predictor.load(model))
        try:
            yield
        finally:
            loading.cancel()
            if isinstance(app, ServingApp):
                app.fast_path.close()
            service.predictor.close()

    app = ServingApp(
        title="coalmine-serving", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.service = service
    _add_routes(app, Routes(service))
    app.add_exception_handler(ServingError, _serving_error)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.fast_path = InferenceFastPath(super(ServingApp, app).__call__, service)
    return app


class ServingApp(FastAPI):
    """FastAPI, except that inference requests skip it entirely.

    FastAPI's ``__call__`` (per-request telemetry checks that read ``os.environ``), Starlette's
    middleware stack and routing cost more than a small model's predict, so POSTs to the
    infer/predict URLs go straight to :class:`InferenceFastPath`; it hands everything else
    back to FastAPI.
    """

    fast_path: InferenceFastPath

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.fast_path(scope, receive, send)


async def _serving_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServingError)
    return error_response(exc)


def _add_routes(app: FastAPI, routes: Routes) -> None:
    get, post = ["GET"], ["POST"]
    app.add_route("/v2/health/live", routes.live, get)
    app.add_route("/v2/health/ready", routes.ready, get)
    app.add_route("/v2", routes.server_metadata, get)
    for prefix in (_MODEL, _VERSION):
        app.add_route(prefix, routes.model_metadata, get)
        app.add_route(f"{prefix}/ready", routes.model_ready, get)
        app.add_route(f"{prefix}/feedback", routes.feedback, post)
    app.add_route("/v1/models/{name}", routes.v1_model, get)
    app.add_route(METRICS_PATH, routes.metrics_text, get)
