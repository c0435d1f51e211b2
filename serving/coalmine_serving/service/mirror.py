"""Shadow traffic: a stable pod sends a share of its requests on to the canary, afterwards.

The client's answer is this pod's, sent before anything here waits for the canary: ``offer``
only puts the request on a bounded queue (``put_nowait``; a full queue drops and counts), and
a few worker tasks send it to the canary and compare the two answers row by row. A canary
that is down, slow or wrong costs the client nothing: its failures land in a counter, and a
hanging canary fills the queue, which then drops.

Where to mirror comes from a file the operator writes into a mounted Secret and this pod
re-reads every ``RELOAD_SECONDS`` (``MirrorConfig``), so a shadow step starts and ends
without restarting stable.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import numpy as np
import orjson

from coalmine_serving import contract
from coalmine_serving.contract import MirrorResult
from coalmine_serving.metrics import ShadowCounters

log = logging.getLogger("coalmine_serving")
RELOAD_SECONDS = 1.0


@dataclass(frozen=True)
class MirrorTarget:
    """Where to mirror and how much."""

    url: str
    """Base URL of the canary (its Service), e.g. ``http://10.96.0.12:8080``."""
    share: float
    """Fraction of successful requests mirrored, in (0, 1]."""
    canary_revision: str
    """The canary's revision: the ``canary_revision`` label of the comparison counters."""


def parse_target(raw: bytes) -> MirrorTarget | None:
    """``{"url", "share", "canaryRevision"}`` → a target; ``{}`` or share 0 → None.

    >>> parse_target(b'{"url": "http://10.0.0.1:8080", "share": 0.5, "canaryRevision": "r2"}')
    MirrorTarget(url='http://10.0.0.1:8080', share=0.5, canary_revision='r2')
    >>> parse_target(b'{}') is None
    True
    """
    data = orjson.loads(raw) if raw.strip() else {}
    if not isinstance(data, dict):
        raise ValueError("the mirror config must be a JSON object")
    share = float(data.get("share", 0))
    if not data or share == 0:
        return None
    url, revision = data.get("url"), data.get("canaryRevision")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError("url must be an http(s) URL")
    if not isinstance(revision, str) or not revision:
        raise ValueError("canaryRevision must be a non-empty string")
    if not 0 < share <= 1:
        raise ValueError("share must be between 0 and 1")
    return MirrorTarget(url.rstrip("/"), share, revision)


class MirrorConfig:
    """The mirror file, re-read at most every ``RELOAD_SECONDS``; a broken file keeps the
    last good target (logged), a missing one means no mirroring."""

    def __init__(self, path: Path | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._path = path
        self._clock = clock
        self._checked = float("-inf")
        self._raw: bytes | None = None
        self._target: MirrorTarget | None = None

    def current(self) -> MirrorTarget | None:
        now = self._clock()
        if self._path is not None and now - self._checked >= RELOAD_SECONDS:
            self._checked = now
            self._reload(self._path)
        return self._target

    def _reload(self, path: Path) -> None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raw = b""
        except OSError as exc:
            log.error("mirror config %s unreadable, keeping the last one: %s", path, exc)
            return
        if raw == self._raw:
            return
        try:
            self._target = parse_target(raw)
        except (ValueError, TypeError) as exc:
            log.error("mirror config %s invalid, keeping the last one: %s", path, exc)
        self._raw = raw


class Job(NamedTuple):
    """One mirrored request: what to send and the answer it is compared with."""

    target: MirrorTarget
    path: str
    body: bytes
    headers: tuple[tuple[str, str], ...]
    stable_outputs: list[Any]
    classifier: bool
    v1: bool


class Comparison(NamedTuple):
    agreed: int
    disagreed: int
    abs_diff: float


def compare(stable: list[Any], canary: list[Any], classifier: bool) -> Comparison:
    """Row by row: the same class (as text, so ``1`` and ``1.0`` from JSON are one class only
    when the model says so), or the absolute difference of two values.

    >>> compare([0, 1, 2], [0, 2, 2], classifier=True)
    Comparison(agreed=2, disagreed=1, abs_diff=0.0)
    >>> compare([1.0, 2.0], [1.0, 2.5], classifier=False)
    Comparison(agreed=1, disagreed=1, abs_diff=0.5)
    """
    if len(stable) != len(canary):
        raise ValueError(f"canary answered {len(canary)} rows for {len(stable)}")
    if classifier:
        agreed = sum(str(a) == str(b) for a, b in zip(stable, canary, strict=True))
        return Comparison(agreed, len(stable) - agreed, 0.0)
    diffs = np.abs(np.asarray(stable, dtype=np.float64) - np.asarray(canary, dtype=np.float64))
    total = float(diffs.sum())
    if not math.isfinite(total):
        raise ValueError("canary answered a value that is not a finite number")
    agreed = int((diffs == 0).sum())
    return Comparison(agreed, len(stable) - agreed, total)


def canary_outputs(body: bytes, v1: bool) -> list[Any]:
    """The per-row answers in a V2 infer or V1 predict response body."""
    data = orjson.loads(body)
    outputs = data["predictions"] if v1 else data["outputs"][0]["data"]
    if not isinstance(outputs, list):
        raise ValueError("canary outputs are not a list")
    return [row[0] if isinstance(row, list) and len(row) == 1 else row for row in outputs]


class MirrorSendError(Exception):
    """The canary could not be reached, or answered something that is not HTTP/1.1."""


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class CanaryConnection:
    """One kept-alive HTTP/1.1 connection to the canary, written by hand on asyncio streams.

    httpx cost the stable pod about 2 ms of CPU per mirrored request on the shared test
    machine, on the event loop its clients are served from; this costs a write, a read of the
    head and a read of ``Content-Length`` bytes (coalmine-serve always sends it)."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._streams: Streams | None = None
        self._address: tuple[str, int] | None = None

    async def post(
        self, target: MirrorTarget, path: str, body: bytes, headers: tuple[tuple[str, str], ...]
    ) -> tuple[int, bytes]:
        try:
            return await asyncio.wait_for(self._post(target, path, body, headers), self._timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            self.close()
            raise MirrorSendError(str(exc) or type(exc).__name__) from None

    async def _post(
        self, target: MirrorTarget, path: str, body: bytes, headers: tuple[tuple[str, str], ...]
    ) -> tuple[int, bytes]:
        reader, writer = await self._open(target)
        host, port = self._address or ("", 0)
        lines = [f"POST {path} HTTP/1.1", f"host: {host}:{port}", f"content-length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        head = await reader.readuntil(b"\r\n\r\n")
        status, length, closing = _parse_head(head)
        content = await reader.readexactly(length)
        if closing:
            self.close()
        return status, content

    async def _open(
        self, target: MirrorTarget
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        address = _address(target.url)
        if self._streams is not None and self._address == address:
            return self._streams
        self.close()
        self._streams = await asyncio.open_connection(*address)
        self._address = address
        return self._streams

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
        self._streams = None


def _address(url: str) -> tuple[str, int]:
    """``http://10.0.0.1:8080`` → ``("10.0.0.1", 8080)`` (plain HTTP: in-cluster traffic to a
    Service, like the client's own request to this pod)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError("only http:// mirror targets are supported")
    return parts.hostname, parts.port or 80


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    """(status, content length, connection closing) of a response head.

    >>> _parse_head(b"HTTP/1.1 200 OK\\r\\ncontent-length: 12\\r\\n\\r\\n")
    (200, 12, False)
    """
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    status = rest[:3]
    if not version.startswith("HTTP/1.") or not status.isdigit():
        raise ValueError("not an HTTP/1.x response")
    length, closing = None, version == "HTTP/1.0"
    for line in header_lines:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            closing = value.strip().lower() == "close"
    if length is None or not 0 <= length <= MAX_ANSWER_BYTES:
        raise ValueError("the canary's answer has no usable content-length")
    return int(status), length, closing


MAX_ANSWER_BYTES = 64 * 1024 * 1024
FAILURE_BACKOFF_SECONDS = 0.5
"""After a failed send a worker rests this long: a canary that is down or hanging costs the
stable pod a few attempts a second, and the mirrored requests meanwhile fill the queue and
are dropped (counted) at the price of a ``put_nowait``."""


class Mirror:
    """The bounded queue and the workers that empty it, each over its own connection."""

    def __init__(
        self,
        config: MirrorConfig,
        counters: ShadowCounters,
        *,
        queue_size: int,
        concurrency: int,
        timeout: float,
    ) -> None:
        self.config = config
        self.counters = counters
        self._queue: asyncio.Queue[Job] = asyncio.Queue(queue_size)
        self._concurrency = concurrency
        self._timeout = timeout
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the workers (on the running loop)."""
        self._workers = [
            asyncio.create_task(self._work(CanaryConnection(self._timeout)))
            for _ in range(self._concurrency)
        ]

    async def close(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    def offer(
        self,
        path: str,
        body: bytes,
        headers: tuple[tuple[str, str], ...],
        outputs: np.ndarray,
        classifier: bool,
        v1: bool,
    ) -> None:
        """Maybe mirror one answered request; never blocks, never raises."""
        try:
            target = self.config.current()
            if target is None or not self._workers or random.random() >= target.share:
                return
            if self._queue.full():
                self.counters.mirrored(target.canary_revision, MirrorResult.DROPPED)
                return
            job = Job(target, path, body, headers, outputs.tolist(), classifier, v1)
            self._queue.put_nowait(job)
        except Exception:  # the client's answer is already made: nothing here may spoil it
            log.exception("mirroring a request failed")

    async def _work(self, connection: CanaryConnection) -> None:
        try:
            while True:
                job = await self._queue.get()
                result = await self._send(connection, job)
                self.counters.mirrored(job.target.canary_revision, result)
                if result is MirrorResult.FAILED:
                    await asyncio.sleep(FAILURE_BACKOFF_SECONDS)
        finally:
            connection.close()

    async def _send(self, connection: CanaryConnection, job: Job) -> MirrorResult:
        headers = (*job.headers, (contract.MIRROR_HEADER, "1"))
        try:
            status, content = await connection.post(job.target, job.path, job.body, headers)
            if status != 200:
                return MirrorResult.FAILED
            outputs = canary_outputs(content, job.v1)
            comparison = compare(job.stable_outputs, outputs, job.classifier)
        except (MirrorSendError, ValueError, KeyError, IndexError, TypeError):
            return MirrorResult.FAILED
        self.counters.compared(job.target.canary_revision, *comparison)
        return MirrorResult.COMPARED
