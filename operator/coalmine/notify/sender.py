"""Delivery to one webhook: a bounded queue and one background thread, so a tick only ever
does a ``put_nowait``. A full queue drops the new notification; a failed request is retried
with exponential backoff (connection errors, timeouts, 429 and 5xx; never other 4xx) up to
a number of attempts, then dropped. Every drop is counted and logged, never raised.

One thread per webhook: a hanging receiver delays only its own notifications, and each
webhook receives its notifications in the order the transitions happened.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

log = logging.getLogger(__name__)

FIRST_BACKOFF, MAX_BACKOFF = 1.0, 30.0
RETRIED_STATUS = frozenset({408, 425, 429})


class RetryableError(Exception):
    """The attempt failed in a way another attempt may not (network, timeout, 5xx, 429)."""


Post = Callable[[bytes, dict[str, str]], None]
"""Send one body with these headers; raise ``RetryableError`` or any other error on failure."""


@dataclass
class Counts:
    sent: int = 0
    retried: int = 0
    dropped_full: int = 0
    """Dropped because the queue was full (the receiver is slower than the rollouts)."""
    dropped_failed: int = 0
    """Dropped after the last attempt failed, or on an answer not worth retrying."""


def http_post(url: str, timeout: float) -> Post:
    """A ``Post`` over HTTP(S): no redirects followed (a 3xx is a failure, so a receiver
    cannot bounce the operator's request, and its auth header, elsewhere)."""
    client = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)

    def post(body: bytes, headers: dict[str, str]) -> None:
        try:
            response = client.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:  # connect, read, timeouts
            raise RetryableError(type(error).__name__) from None
        if response.status_code >= 500 or response.status_code in RETRIED_STATUS:
            raise RetryableError(f"HTTP {response.status_code}")
        if response.status_code >= 300:
            raise RuntimeError(f"HTTP {response.status_code}")

    return post


def where(url: str) -> str:
    """A webhook as logs show it: scheme and host only, since chat webhooks carry their
    secret in the path (``hooks.slack.com/services/T0/B0/secret``)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


class WebhookSender:
    """The queue and the thread of one webhook."""

    def __init__(
        self,
        url: str,
        post: Post,
        *,
        queue_size: int,
        attempts: int,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self.where = where(url)
        self.counts = Counts()
        self._post, self._attempts = post, attempts
        self._queue: queue.Queue[tuple[bytes, dict[str, str], str] | None] = queue.Queue(queue_size)
        self._stop = threading.Event()
        self._full_lock = threading.Lock()
        self._wait = wait or self._stop.wait  # returns True when stopping
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()

    def offer(self, body: bytes, headers: dict[str, str], what: str) -> bool:
        """Queue one notification; False (counted, logged) when the queue is full."""
        try:
            self._queue.put_nowait((body, headers, what))
        except queue.Full:
            with self._full_lock:  # ticks of several objects may offer at once
                self.counts.dropped_full += 1
            log.warning(
                "notification %s to %s dropped: queue full (%d dropped so far)",
                what, self.where, self.counts.dropped_full,
            )  # fmt: skip
            return False
        return True

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Full):  # the thread sees the stop flag anyway
            self._queue.put_nowait(None)
        self._thread.join(timeout)

    def drain(self, timeout: float) -> bool:
        """Tests: wait until everything queued was sent or dropped."""
        done = threading.Event()

        def join() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=join, daemon=True).start()
        return done.wait(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            try:
                if item is not None:
                    self._deliver(*item)
            finally:
                self._queue.task_done()

    def _deliver(self, body: bytes, headers: dict[str, str], what: str) -> None:
        delay = FIRST_BACKOFF
        for attempt in range(1, self._attempts + 1):
            try:
                self._post(body, headers)
            except RetryableError as error:
                if attempt < self._attempts:
                    self.counts.retried += 1
                    if self._wait(delay):
                        return
                    delay = min(delay * 2, MAX_BACKOFF)
                    continue
                self._dropped(what, f"{error} after {attempt} attempts")
                return
            except Exception as error:
                self._dropped(what, f"{type(error).__name__}: {error}")
                return
            self.counts.sent += 1
            return

    def _dropped(self, what: str, why: str) -> None:
        self.counts.dropped_failed += 1
        log.warning(
            "notification %s to %s dropped: %s (%d dropped so far)",
            what, self.where, why, self.counts.dropped_failed,
        )  # fmt: skip
