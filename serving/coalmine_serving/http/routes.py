"""Thin HTTP routes for health, metadata, feedback and /metrics.

Inference itself is served by :mod:`coalmine_serving.http.fastpath`. These are plain Starlette
routes (``add_route``), not FastAPI path operations: every body is validated by
:mod:`coalmine_serving.http.codec`, so pydantic models would only repeat the work.
"""

from __future__ import annotations

from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from coalmine_serving.errors import NotFoundError, ServingError
from coalmine_serving.http import codec
from coalmine_serving.service.inference import InferenceService

JSON = "application/json"


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(payload), status, headers, JSON)


def error_response(error: ServingError) -> Response:
    # OIP v2 error shape: {"error": "<message>"}
    return json_response({"error": error.message}, error.status)


class Routes:
    def __init__(self, service: InferenceService) -> None:
        self.service = service
        self.settings = service.settings
        self.metrics = service.metrics
        self.predictor = service.predictor

    # --- health and metadata ---

    async def live(self, request: Request) -> Response:
        return json_response({"live": True})

    async def ready(self, request: Request) -> Response:
        if self.predictor.ready:
            return json_response({"ready": True})
        return json_response({"ready": False, "error": self.predictor.load_error}, 503)

    async def model_ready(self, request: Request) -> Response:
        self._check_model(request)
        return await self.ready(request)

    async def server_metadata(self, request: Request) -> Response:
        from coalmine_serving import __version__

        return json_response({"name": "coalmine-serving", "version": __version__, "extensions": []})

    async def model_metadata(self, request: Request) -> Response:
        self._check_model(request)
        sig = self.predictor.require_runtime().signature
        width = sig.n_features if sig.n_features is not None else -1
        return json_response(
            {
                "name": self.settings.model_name,
                "versions": [self.settings.model_version],
                "platform": self.predictor.require_runtime().format,
                "inputs": [
                    {
                        "name": sig.input_name,
                        "datatype": codec.v2_name(sig.dtype),
                        "shape": [-1, width],
                    }
                ],
                "outputs": [
                    {
                        "name": sig.output_name,
                        "datatype": codec.v2_name(self.predictor.output_dtype),
                        "shape": [-1],
                    }
                ],
            }
        )

    async def v1_model(self, request: Request) -> Response:
        self._check_model(request)
        return json_response({"name": self.settings.model_name, "ready": self.predictor.ready})

    async def metrics_text(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # --- feedback ---

    async def feedback(self, request: Request) -> Response:
        try:
            self._check_model(request)
            request_id, truth = codec.decode_feedback(await request.body())
            return json_response(self.service.feedback(request_id, truth))
        except ServingError as error:
            return error_response(error)

    def _check_model(self, request: Request) -> None:
        params = request.path_params
        if params.get("name") != self.settings.model_name:
            raise NotFoundError(f"model {params.get('name')!r} is not served here")
        version = params.get("version")
        if version is not None and version != self.settings.model_version:
            raise NotFoundError(
                f"version {version!r} of model {self.settings.model_name!r} is not served here "
                f"(this server has {self.settings.model_version!r})"
            )
