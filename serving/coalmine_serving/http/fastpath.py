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

from coalmine_serving.contract import Outcome
from coalmine_serving.errors import (
    BadRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PredictTimeoutError,
    ServingError,
)
from coalmine_serving.http import codec
from coalmine_serving.service.inference import InferenceService

log = logging.getLogger("coalmine_serving")
_V2 = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")
_V1 = re.compile(r"/v1/models/([^/]+):predict")
_JSON = (b"content-type", b"application/json")
Reply = tuple[int, bytes, str | None]


class Deadlines:
    """Per-request deadlines enforced by one periodic sweep instead of a timer per request.

    A sweep task cancels requests past their deadline (reading a slow body or predicting), at
    most ``timeout / 4`` (capped at 50 ms) late. It runs only while requests are in flight: a
    dict insert and delete per request is cheaper than ``call_later`` and its cancel.
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._interval = min(timeout / 4, 0.05)
        self._due: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def add(self, task: asyncio.Task[Any]) -> None:
        loop = task.get_loop()
        self._due[task] = loop.time() + self._timeout
        if self._sweeper is None:
            self._sweeper = loop.create_task(self._sweep(loop))

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()

    def expired(self, task: asyncio.Task[Any]) -> bool:
        return task in self._expired

    def remove(self, task: asyncio.Task[Any]) -> None:
        self._due.pop(task, None)
        self._expired.discard(task)

    async def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while self._due:
                await asyncio.sleep(self._interval)
                now = loop.time()
                for task, due in list(self._due.items()):
                    if due <= now:
                        del self._due[task]
                        self._expired.add(task)
                        task.cancel()
        finally:
            self._sweeper = None  # the next request starts a new sweep


class InferenceFastPath:
    def __init__(self, app: ASGIApp, service: InferenceService) -> None:
        self.app = app
        self.service = service
        self.settings = service.settings
        self.metrics = service.metrics
        self._deadlines = Deadlines(service.settings.request_timeout_seconds)

    def close(self) -> None:
        self._deadlines.close()

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
        task = asyncio.current_task()
        assert task is not None
        self._deadlines.add(task)
        try:
            return await self._process(scope, receive, name, version, v1)
        except asyncio.CancelledError:
            if not self._deadlines.expired(task):
                raise
            task.uncancel()
            limit = self.settings.request_timeout_seconds
            return _error(PredictTimeoutError(f"request took longer than {limit:g}s"))
        except ServingError as error:
            return _error(error)
        except Exception:
            log.exception("inference failed")
            return _error(ServingError("internal error while predicting"))
        finally:
            self._deadlines.remove(task)

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
        runtime = self.service.predictor.require_runtime()
        headers = _Headers(scope)
        body = await read_body(receive, headers.content_length, settings.max_body_bytes)
        header_id = headers.request_id
        if v1:
            rows = codec.decode_v1(body, runtime.signature, settings.max_rows)
            request_id, outputs = await self.service.predict(rows, header_id or uuid.uuid4().hex)
            return 200, codec.encode_v1(outputs), request_id
        decoded = codec.decode_v2(body, runtime.signature, settings.max_rows, headers.json_length)
        request_id, outputs = await self.service.predict(
            decoded.rows, decoded.request_id or header_id
        )
        payload = codec.encode_v2(
            settings.model_name, settings.model_version, request_id,
            runtime.signature.output_name, outputs,
        )  # fmt: skip
        return 200, payload, request_id


async def read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """The whole body, refusing (413) a declared or streamed size over ``limit``."""
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


class _Headers:
    """The request headers inference needs, found in one pass over the header list."""

    __slots__ = ("content_length", "json_length", "request_id")

    def __init__(self, scope: Scope) -> None:
        self.content_length: str | None = None
        self.request_id: str | None = None
        self.json_length: str | None = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                self.content_length = value.decode("latin-1")
            elif key == b"x-request-id":
                self.request_id = value.decode("latin-1")
            elif key == b"inference-header-content-length":
                self.json_length = value.decode("latin-1")


def _error(error: ServingError) -> Reply:
    return error.status, orjson.dumps({"error": error.message}), None
