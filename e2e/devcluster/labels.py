"""Delayed ground truth, posted the way a label pipeline posts it.

A pipeline never answers on the prediction's own connection: it stores each prediction's
receipt with the request, learns the true label later, and posts labels in batches to the
model's Service, where kube-proxy (or the stand-in's equivalent) picks a pod per connection.
``LabelPipeline`` does exactly that: every label waits ``delay`` seconds, then goes out in a
batch of up to ``batch_size`` on a NEW connection to the URL ``target()`` returns at that
moment, so labels reach pods other than the one that predicted, including pods that did not
exist when it predicted. A batch that gets no answer (a pod going away) is sent again later,
as a pipeline with retries would; a label the server refuses is counted by its reason.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import httpx

REASONS = {403: "forged", 404: "unknown", 409: "duplicate", 410: "expired"}


class LabelPipeline:
    def __init__(
        self,
        target: Callable[[], str | None],
        model: str,
        delay: float = 3.0,
        batch_size: int = 250,
        max_pending: int = 200_000,
    ) -> None:
        self._target = target  # base URL of a pod, or of the Service (kube-proxy picks the pod)
        self._model = model
        self._delay = delay
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._pending: deque[tuple[float, dict[str, Any]]] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="labels", daemon=True)
        # Without keep-alive, every batch opens a new connection (the Service picks the pod
        # anew); one client for all of them, since making a client costs 30-200 ms.
        self._http = httpx.Client(timeout=10.0, limits=httpx.Limits(max_keepalive_connections=0))
        self.added = 0
        self.joined = 0
        self.rejected: Counter[str] = Counter()  # reason -> labels the server refused
        self.dropped = 0  # labels the pipeline's own queue could not hold
        self.retried_batches = 0
        self.batches = 0

    def start(self) -> LabelPipeline:
        self._thread.start()
        return self

    def add(self, receipt: str, truth: Any) -> None:
        with self._lock:
            if len(self._pending) >= self._max_pending:
                self.dropped += 1
                return
            self._pending.append((time.monotonic(), {"receipt": receipt, "truth": truth}))
            self.added += 1

    def stop(self, flush_timeout: float = 30.0) -> None:
        """Stop, after posting every label still waiting (without waiting out its delay).

        The flush ends after ``flush_timeout`` seconds, or at once when there is nowhere to
        post (``target()`` is None: the Service is gone, as after a test deleted its
        ModelDeployment; a teardown waited the whole 30 s for it)."""
        self._stop.set()
        self._thread.join(timeout=10)
        deadline = time.monotonic() + flush_timeout
        while self.waiting and time.monotonic() < deadline and self._target() is not None:
            if not self._post_due(float("inf")):
                time.sleep(0.5)
        self._http.close()

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._pending)

    @property
    def join_rate(self) -> float:
        settled = self.joined + self.rejected.total()
        return self.joined / settled if settled else 0.0

    def summary(self) -> str:
        return (
            f"{self.joined} of {self.added} labels joined in {self.batches} batches "
            f"({self.join_rate:.2%}); refused {dict(self.rejected)}, waiting {self.waiting}, "
            f"dropped {self.dropped}, batches retried {self.retried_batches}"
        )

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            while self._post_due(time.monotonic() - self._delay):
                pass

    def _post_due(self, cutoff: float) -> bool:
        """Post one batch of labels added before ``cutoff``; False if none is due or it failed."""
        with self._lock:
            batch: list[dict[str, Any]] = []
            while self._pending and len(batch) < self._batch_size and self._pending[0][0] <= cutoff:
                batch.append(self._pending.popleft()[1])
        if not batch:
            return False
        if self._send(batch):
            return True
        with self._lock:  # back to the front, to be sent again
            self._pending.extendleft((0.0, label) for label in reversed(batch))
        self.retried_batches += 1
        return False

    def _send(self, batch: list[dict[str, Any]]) -> bool:
        base = self._target()
        if base is None:
            return False
        try:
            reply = self._http.post(
                f"{base}/v2/models/{self._model}/feedback", json={"labels": batch}
            )
        except httpx.TransportError:
            return False
        if reply.status_code != 200:
            return False  # 503 from a pod shutting down, or similar: try again later
        self.batches += 1
        body = reply.json()
        self.joined += int(body["joined"])
        for result in body["results"]:
            if result["status"] != 200:
                self.rejected[REASONS.get(result["status"], f"http {result['status']}")] += 1
        return True
