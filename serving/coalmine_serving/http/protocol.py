"""uvicorn's httptools protocol, hardened against hostile clients.

uvicorn (0.54) gives a connection no timer until its first response, puts no limit on header
size, counts every open socket against ``limit_concurrency`` (so ~100 idle sockets made every
request, probes included, answer 503), and closes the socket right after a 413 while the
client is still sending, which resets the connection before the client reads the reply. This
subclass adds, per connection:

* a **header deadline**: from accepting the socket, and from the first byte of each later
  request, the headers must be complete within ``header_timeout_seconds``, or the client gets
  408 and the socket is closed (an idle keep-alive socket is closed by uvicorn's own
  keep-alive timer);
* a **header size cap**: request line plus headers over ``max_header_bytes`` get 431;
* a **request cap that counts requests, not sockets**: over ``max_concurrency + 32`` requests
  in flight, new ones get 503, except health probes and ``/metrics``, which are always served,
  and inference, which the app admits against ``max_concurrency`` exactly;
* a **bounded lingering close**: when a reply goes out before the request body was read (413,
  or any early answer), the reply is sent with ``connection: close``, the write side is shut,
  and what the client still sends is read and dropped, at most ``refused_body_drain_bytes``
  and ``refused_body_drain_seconds``, then the socket is closed. So a client that writes its
  whole body before reading (Python's urllib, curl) reads the 413, and a huge body costs this
  pod a bounded amount of reading, never the whole body.

The hot path pays one comparison per request: the header-size check looks at the chunk sizes
and only counts headers exactly when a chunk was large, and the header timer is armed only for
a new connection or headers split across reads.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from coalmine_serving.http.guards import ALWAYS_SERVED
from coalmine_serving.settings import ServingSettings

EXTRA_REQUESTS = 32  # over max_concurrency, for health, metadata, feedback and /metrics
PROTOCOL_REFUSAL_DRAIN_BYTES = 1024 * 1024  # after a 408, 431 or 503 of the protocol's own


class _RejectedError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def guarded_protocol(settings: ServingSettings) -> type[HttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, with ``settings``' limits."""

    class Configured(GuardedHttpToolsProtocol):
        header_timeout = settings.header_timeout_seconds
        max_header_bytes = settings.max_header_bytes
        max_requests = settings.max_concurrency + EXTRA_REQUESTS
        drain_bytes = settings.refused_body_drain_bytes
        drain_seconds = settings.refused_body_drain_seconds

    return Configured


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout: float = 10.0
    max_header_bytes: int = 32 * 1024
    max_requests: int = 96
    drain_bytes: int = 64 * 1024 * 1024
    drain_seconds: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limit_concurrency = None  # uvicorn's counts sockets; ours counts requests
        # One attribute, not four: CPython 3.11 shares instance dict keys up to 30 names, and
        # uvicorn's protocol has 28; past the limit every attribute access of the protocol
        # gets slower (measured: ~4 us a request).
        self._guard = _Guard()

    # --- connection and data ---

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_LingeringTransport(transport, self))  # type: ignore[arg-type]
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        if self._guard.draining is not None:
            self._guard.draining.stop()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        guard = self._guard
        if guard.draining is not None:
            guard.draining.read(len(data))
            return
        self._unset_keepalive_if_required()
        guard.chunk_bytes = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.send_400_response("Upgrades are not supported.")
        except httptools.HttpParserError as error:
            rejected = error.__context__
            if isinstance(rejected, _RejectedError):
                self._reply_and_close(rejected.status, str(rejected))
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        if self._in_headers():
            guard.header_bytes += len(data)
            if guard.header_bytes > self.max_header_bytes:
                self._reply_and_close(431, self._too_large_message())
            elif guard.header_timer is None:
                self._arm_header_timer()

    def _in_headers(self) -> bool:
        """True between a request's first byte and the end of its headers."""
        scope = self.scope
        return scope is not None and (self.cycle is None or self.cycle.scope is not scope)

    # --- parser callbacks ---

    def on_headers_complete(self) -> None:
        guard = self._guard
        if guard.header_timer is not None:
            self._disarm_header_timer()
        if guard.header_bytes + guard.chunk_bytes > self.max_header_bytes:
            self._check_header_size()  # only when reads were large: the usual case is free
        guard.header_bytes = 0
        super().on_headers_complete()

    def _check_header_size(self) -> None:
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_header_bytes:
            raise _RejectedError(431, self._too_large_message())

    def _too_large_message(self) -> str:
        return f"request line and headers exceed {self.max_header_bytes} bytes"

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if len(self.tasks) >= self.max_requests and not _exempt(cycle.scope):
            self.logger.warning("more than %d requests in flight: 503", self.max_requests)
            self._reply_and_close(503, f"more than {self.max_requests} requests in flight")
            return
        super()._start_asgi_task(cycle, app)

    # --- header deadline ---

    def _arm_header_timer(self) -> None:
        self._guard.header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._guard.header_timer is not None:
            self._guard.header_timer.cancel()
            self._guard.header_timer = None

    def _headers_too_slow(self) -> None:
        self._guard.header_timer = None
        if self.transport.is_closing():
            return
        if self._in_headers():
            message = f"request headers not received within {self.header_timeout:g}s"
            self._reply_and_close(408, message)
        elif self.cycle is None:
            self.transport.close()  # connected and sent nothing: no reply to read

    # --- replies from the protocol itself, and the lingering close ---

    def _reply_and_close(self, status: int, message: str) -> None:
        body = message.encode("ascii", "replace")
        head = STATUS_LINE[status] + (
            b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n" % len(body)
        )
        self.transport.write(head + body)
        # A client refused for its headers gets the reply, but no generous drain: what it
        # still sends is more of the same.
        self._start_draining(min(self.drain_bytes, PROTOCOL_REFUSAL_DRAIN_BYTES))

    def request_unread(self) -> bool:
        """True when a reply went (or goes) out before the request's body was all received."""
        if self._in_headers():
            return True
        cycle = self.cycle
        return cycle is not None and cycle.more_body

    def _start_draining(self, max_bytes: int | None = None) -> None:
        """Half-close, then read and drop what the client still sends, within bounds."""
        if self._guard.draining is not None:
            return
        self._disarm_header_timer()
        self._unset_keepalive_if_required()
        real = self.transport
        if isinstance(real, _LingeringTransport):
            real = real.inner
        limit = self.drain_bytes if max_bytes is None else max_bytes
        self._guard.draining = _Drain(real, self.loop, limit, self.drain_seconds)

    def eof_received(self) -> None:
        if self._guard.draining is not None:
            self._guard.draining.stop()  # the client sent all it had: close now

    def on_response_complete(self) -> None:
        if self.cycle is not None and self.cycle.more_body and not self.transport.is_closing():
            # A keep-alive reply before the body was read (say a 413 from a route): uvicorn
            # would read the rest of the body, unbounded, to find the next request.
            self.transport.close()
            return
        super().on_response_complete()


class _Guard:
    """A connection's state for the guards."""

    __slots__ = ("chunk_bytes", "draining", "header_bytes", "header_timer")

    def __init__(self) -> None:
        self.header_timer: asyncio.TimerHandle | None = None
        self.header_bytes = 0  # bytes of earlier reads that ended inside the headers
        self.chunk_bytes = 0  # size of the read being parsed
        self.draining: _Drain | None = None


def _exempt(scope: Any) -> bool:
    """Probes and /metrics are always served; inference has its own exact limit in the app
    (``max_concurrency``). uvicorn's task set lags (a finished task leaves it one loop turn
    later), so under load it overcounts and must not decide for inference."""
    path = scope["path"]
    return path in ALWAYS_SERVED or path.endswith(("/infer", ":predict"))


class _Drain:
    """Reads and drops at most ``max_bytes`` for at most ``seconds``, then closes."""

    def __init__(
        self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, max_bytes: int,
        seconds: float,
    ) -> None:  # fmt: skip
        self.transport = transport
        self.left = max_bytes
        if transport.can_write_eof():
            transport.write_eof()  # the reply, then FIN: the client sees the end of it
        transport.resume_reading()  # uvicorn may have paused reading for a large body
        self.timer = loop.call_later(seconds, self.stop)

    def read(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            self.stop()

    def stop(self) -> None:
        self.timer.cancel()
        if not self.transport.is_closing():
            self.transport.close()


class _LingeringTransport:
    """The transport uvicorn's request cycle writes to: its ``close`` lingers when the client
    has not finished sending its request, so the reply is not lost to a reset."""

    def __init__(self, inner: asyncio.Transport, protocol: GuardedHttpToolsProtocol) -> None:
        self.inner = inner
        self._protocol = protocol
        # Bound methods copied, not looked up through __getattr__: these are on the hot path.
        self.write = inner.write
        self.is_closing = inner.is_closing
        self.get_extra_info = inner.get_extra_info
        self.pause_reading = inner.pause_reading
        self.resume_reading = inner.resume_reading

    def close(self) -> None:
        if self._protocol.request_unread() and not self.inner.is_closing():
            self._protocol._start_draining()
        else:
            self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
