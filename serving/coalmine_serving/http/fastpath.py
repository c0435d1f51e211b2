"""Inference requests handled in raw ASGI, in front of the Starlette app.

Inference is the only hot path: a small model predicts in ~20-100 µs, while Starlette's
routing, middleware and Request/Response objects cost tens of microseconds more. So POSTs to
the infer/predict URLs are matched here with one regex and answered with two ``send`` calls;
everything else (health, metadata, feedback, /metrics) falls through to the Starlette app.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid

import numpy as np
from starlette.types import ASGIApp, Receive, Scope, Send

from coalmine_serving.contract import Outcome, outcome_of
from coalmine_serving.errors import PredictTimeoutError, ServingError
from coalmine_serving.http import codec
from coalmine_serving.http.deadlines import Deadlines
from coalmine_serving.http.guards import check_model, check_request_id, read_body
from coalmine_serving.service.inference import InferenceService
from coalmine_serving.settings import Task

log = logging.getLogger("coalmine_serving")
_V2 = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")
_V1 = re.compile(r"/v1/models/([^/]+):predict")
_JSON = (b"content-type", b"application/json")
_CLOSE = (b"connection", b"close")
Reply = tuple[int, bytes, str | None, str | None]  # status, body, request id, receipt
RECEIPT_HEADER_MAX = 2048  # larger receipts (many rows) only in the body: proxies cap headers


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
        status, body, request_id, receipt = await self._admitted(scope, receive, name, version, v1)
        outcome = outcome_of(status)
        metrics.outcomes[outcome].inc()
        if outcome is Outcome.SUCCESS:
            # Latency of successes only, as the contract says: a refusal in microseconds or a
            # deadline hit would say nothing about how fast the model serves.
            metrics.duration.observe(time.perf_counter() - started)
        headers = [_JSON, (b"content-length", str(len(body)).encode())]
        if request_id and request_id.isascii() and request_id.isprintable():
            headers.append((b"x-request-id", request_id.encode()))  # never echo CR/LF
        if receipt and len(receipt) <= RECEIPT_HEADER_MAX:
            headers.append((b"coalmine-receipt", receipt.encode()))
        elif status == 413:
            headers.append(_CLOSE)  # the body was not read: the connection cannot be reused
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
        check_model(settings, name, version)
        runtime = self.service.predictor.require_runtime()
        headers = _Headers(scope)
        check_request_id(headers.request_id)
        body = await read_body(receive, headers.content_length, settings.max_body_bytes)
        header_id = headers.request_id
        if v1:
            rows = codec.decode_v1(body, runtime.signature, settings.max_rows)
            made = await self.service.predict(rows, header_id or uuid.uuid4().hex)
            self._mirror(scope, headers, body, made.outputs, v1)
            return 200, codec.encode_v1(made.outputs, made.receipt), made.request_id, made.receipt
        decoded = codec.decode_v2(body, runtime.signature, settings.max_rows, headers.json_length)
        made = await self.service.predict(decoded.rows, decoded.request_id or header_id)
        self._mirror(scope, headers, body, made.outputs, v1)
        payload = codec.encode_v2(
            settings.model_name, settings.model_version, made.request_id,
            runtime.signature.output_name, made.outputs, made.receipt,
        )  # fmt: skip
        return 200, payload, made.request_id, made.receipt

    def _mirror(
        self, scope: Scope, headers: _Headers, body: bytes, outputs: np.ndarray, v1: bool
    ) -> None:
        """Queue the request for the canary (a shadow step); returns at once, never raises."""
        mirror = self.service.mirror
        if mirror is None:
            return
        forwarded = [("content-type", "application/json")]
        if headers.json_length is not None:  # binary tensor extension: the JSON part's size
            forwarded.append(("inference-header-content-length", headers.json_length))
        task = self.service.predictor.require_runtime().signature.task
        classifier = task is Task.CLASSIFICATION
        mirror.offer(scope["path"], body, tuple(forwarded), outputs, classifier, v1)


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
    return error.status, codec.encode_error(error), None, None
