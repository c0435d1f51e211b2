"""Request body size limit as a pure ASGI wrapper (Starlette and uvicorn have none).

A declared ``Content-Length`` over the limit fails on the first ``receive()``, before a byte is
read; a chunked body is counted as it streams and fails as soon as it crosses the limit. The
failure is raised *inside* the handler's body read as :class:`PayloadTooLargeError`, so the route
answers 413 and the request is still counted as a client error in the metrics.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from coalmine_serving.errors import PayloadTooLargeError


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared <= self.max_bytes:
            await self.app(scope, receive, send)  # the server enforces the declared length
            return
        await self.app(scope, self._limited(receive, declared), send)

    def _limited(self, receive: Receive, declared: int | None) -> Receive:
        limit = self.max_bytes
        seen = 0

        async def limited_receive() -> Any:
            nonlocal seen
            if declared is not None:
                raise PayloadTooLargeError(f"request body of {declared} bytes exceeds {limit}")
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLargeError(f"request body exceeds {limit} bytes")
            return message

        return limited_receive


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
