"""What every request passes before the model sees it: the model gate, the body and id limits.

Shared by the Starlette routes and the raw-ASGI inference fast path, so both answer the same
404 for a model or version this server does not serve, and the same 413 for a body that is
too large, with the same messages.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Receive

from coalmine_serving.contract import METRICS_PATH
from coalmine_serving.errors import BadRequestError, NotFoundError, PayloadTooLargeError
from coalmine_serving.settings import ServingSettings

# Served even when the server sheds requests, and the only paths on the internal port.
ALWAYS_SERVED = frozenset({"/v2/health/live", "/v2/health/ready", METRICS_PATH})
REQUEST_ID_MAX = 256  # characters, for the x-request-id header as for the body's "id"


def check_model(settings: ServingSettings, name: str | None, version: str | None) -> None:
    """404 unless ``name`` (and ``version``, when the URL has one) is what this server serves."""
    if name != settings.model_name:
        raise NotFoundError(f"model {name!r} is not served here")
    if version is not None and version != settings.model_version:
        raise NotFoundError(
            f"version {version!r} of model {settings.model_name!r} is not served here "
            f"(this server has {settings.model_version!r})"
        )


async def read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """The whole body, refusing (413) a declared or streamed size over ``limit``.

    A declared ``Content-Length`` over the limit fails before a byte is read; a chunked body is
    counted as it streams and fails as soon as it crosses the limit. Neither Starlette nor
    uvicorn limits bodies for us.
    """
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


def check_request_id(request_id: str | None) -> None:
    """400 for an ``x-request-id`` longer than :data:`REQUEST_ID_MAX`: it is echoed and kept."""
    if request_id is not None and len(request_id) > REQUEST_ID_MAX:
        raise BadRequestError(
            f"x-request-id is {len(request_id)} characters; at most {REQUEST_ID_MAX} are allowed"
        )
