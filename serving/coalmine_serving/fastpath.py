"""Inference requests handled in raw ASGI, in front of the FastAPI app.

Inference is the only hot path: a small model predicts in ~20-100 µs, while FastAPI's
routing, middleware and Request/Response objects cost tens of microseconds more. So POSTs to
the infer/predict URLs are matched here with one regex and answered with two ``send`` calls;
everything else (health, metadata, feedback, /metrics) falls through to FastAPI.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from coalmine_serving import codec
from coalmine_serving.contract import Outcome
from coalmine_serving.errors import (
    BadRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PredictTimeoutError,
    ServingError,
)
from coalmine_serving.service import InferenceService

log = logging.getLogger("coalmine_serving")
_V2 = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")
_V1 = re.compile(r"/v1/models/([^/]+):predict")
_JSON = (b"content-type", b"application/json")
Reply = tuple[int, bytes, str | None]


class InferenceFastPath:
    def __init__(self, app: ASGIApp, service: InferenceService) -> None:
        self.app = app
        self.service = service
        self.settings = service.settings
        self.metrics = service.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            if match := _V2.fullmatch(path):
                await self._handle(scope, receive, send, match.group(1), match.group(2), False)
                return
            if match := _V1.fullmatch(path):
                await self._handle(scope, receive, send, match.group(1), None, True)
                return
        await self.app(scope, receive, send)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, name: str, version: str | None, v1: bool
    ) -> None:
        started = time.perf_counter()
        metrics = self.metrics
        status, body, request_id = await self._admitted(scope, receive, name, version, v1)
        if status < 400:
            metrics.outcomes[Outcome.SUCCESS].inc()
        else:
            metrics.outcomes[Outcome.CLIENT_ERROR if status < 500 else Outcome.SERVER_ERROR].inc()
        metrics.duration.observe(time.perf_counter() - started)
        headers = [_JSON, (b"content-length", str(len(body)).encode())]
        if request_id and request_id.isascii() and request_id.isprintable():
            headers.append((b"x-request-id", request_id.encode()))  # never echo CR/LF
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _admitted(
        self, scope: Scope, receive: Receive, name: str, version: str | None, v1: bool
    ) -> Reply:
        try:
            self.service.admit()
        except ServingError as error:
            return _error(error)
        try:
            return await self._with_deadline(scope, receive, name, version, v1)
        finally:
            self.service.release()

    async def _with_deadline(
        self, scope: Scope, receive: Receive, name: str, version: str | None, v1: bool
    ) -> Reply:
        # One timer that cancels this task: cheaper than asyncio.timeout() on the hot path, and
        # it covers reading a slow body as well as the predict.
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timeout = self.settings.request_timeout_seconds
        timer = asyncio.get_running_loop().call_later(timeout, expire)
        try:
            return await self._process(scope, receive, name, version, v1)
        except asyncio.CancelledError:
            if not expired:
                raise
            task.uncancel()
            return _error(PredictTimeoutError(f"request took longer than {timeout:g}s"))
        except ServingError as error:
            return _error(error)
        except Exception:
            log.exception("inference failed")
            return _error(ServingError("internal error while predicting"))
        finally:
            timer.cancel()

    async def _process(
        self, scope: Scope, receive: Receive, name: str, version: str | None, v1: bool
    ) -> Reply:
        settings = self.settings
        if name != settings.model_name:
            raise NotFoundError(f"model {name!r} is not served here")
        if version is not None and version != settings.model_version:
            raise NotFoundError(
                f"version {version!r} of model {name!r} is not served here "
                f"(this server has {settings.model_version!r})"
            )
        runtime = self.service.require_runtime()
        body = await read_body(scope, receive, settings.max_body_bytes)
        header_id = _header(scope, b"x-request-id")
        if v1:
            rows = codec.decode_v1(body, runtime.signature, settings.max_rows)
            request_id, outputs = await self.service.predict(rows, header_id or uuid.uuid4().hex)
            return 200, codec.encode_v1(outputs), request_id
        json_length = _header(scope, b"inference-header-content-length")
        decoded = codec.decode_v2(body, runtime.signature, settings.max_rows, json_length)
        request_id, outputs = await self.service.predict(
            decoded.rows, decoded.request_id or header_id
        )
        payload = codec.encode_v2(
            settings.model_name, settings.model_version, request_id,
            runtime.signature.output_name, outputs,
        )  # fmt: skip
        return 200, payload, request_id


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body, refusing (413) a declared or streamed size over ``limit``."""
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"request body of {declared} bytes exceeds {limit}")
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequestError("client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"request body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _error(error: ServingError) -> Reply:
    return error.status, orjson.dumps({"error": error.message}), None
