"""Thin HTTP routes for health, metadata, feedback and /metrics.

Inference itself is served by :mod:`coalmine_serving.http.fastpath`. These are plain Starlette
routes: every body is validated by :mod:`coalmine_serving.http.codec`, so a schema layer would
only repeat the work. The model gate and the body limit are the fast path's own
(:mod:`coalmine_serving.http.guards`), so both paths answer alike.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from coalmine_serving.errors import ServingError
from coalmine_serving.http import codec
from coalmine_serving.http.guards import check_model, read_body
from coalmine_serving.service.inference import InferenceService

JSON = "application/json"


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(payload), status, headers, JSON)


def error_response(error: ServingError) -> Response:
    # After a 413 the body was not read, so the connection cannot carry another request.
    headers = {"connection": "close"} if error.status == 413 else None
    return Response(codec.encode_error(error), error.status, headers, JSON)


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
            if stuck := self.predictor.stuck_reason():
                return json_response({"ready": False, "error": stuck}, 503)
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
        runtime = self.predictor.require_runtime()
        sig = runtime.signature
        width = sig.n_features if sig.n_features is not None else -1
        return json_response(
            {
                "name": self.settings.model_name,
                "versions": [self.settings.model_version],
                "platform": runtime.format,
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
            body = await self._feedback_body(request)
            feedback = codec.decode_feedback(body, self.settings.feedback_max_batch)
            if feedback.labels is not None:
                return json_response(await self.service.feedback_batch(feedback.labels))
            return json_response(self.service.feedback(feedback.receipt, feedback.truth))
        except ServingError as error:
            return error_response(error)

    async def _feedback_body(self, request: Request) -> bytes:
        # A body trickled in slowly would hold its request slot with no timer: inference has
        # its deadline, and this gets the same one.
        limit = self.settings.request_timeout_seconds
        declared = request.headers.get("content-length")
        try:
            async with asyncio.timeout(limit):
                return await read_body(request.receive, declared, self.settings.max_body_bytes)
        except TimeoutError:
            raise ServingError(f"request body not received within {limit:g}s", 408) from None

    def _check_model(self, request: Request) -> None:
        params = request.path_params
        check_model(self.settings, params.get("name"), params.get("version"))
