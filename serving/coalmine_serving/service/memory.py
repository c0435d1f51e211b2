"""A bounded, time-limited memory of recent predictions, joined later with true labels.

Bounded three ways so no load pattern can grow it without limit: number of ids, total rows
and age. It lives on the event loop thread only, so it needs no lock.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from coalmine_serving.errors import NotFoundError, ServingError


class FeedbackExpiredError(ServingError):
    """The prediction was kept but its time-to-live ran out (410 Gone)."""

    status = 410


class StoredPrediction(NamedTuple):
    # A tuple rather than a dataclass: one object fewer per stored prediction.
    outputs: np.ndarray
    stored_at: float


class PredictionMemory:
    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int,
        max_rows: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._max_rows = max_rows
        self._clock = clock
        # Insertion order is time order, so the oldest entry is always first.
        self._entries: OrderedDict[str, StoredPrediction] = OrderedDict()
        self._rows = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def rows(self) -> int:
        return self._rows

    def put(self, request_id: str, outputs: np.ndarray) -> None:
        if len(outputs) > self._max_rows:
            return  # a single huge batch would evict everything else; not worth keeping
        self._drop(request_id)
        self._entries[request_id] = StoredPrediction(outputs, self._clock())
        self._rows += len(outputs)
        self._evict()

    def pop(self, request_id: str) -> np.ndarray:
        """Take the prediction for ``request_id`` (feedback is accepted once per id)."""
        entry = self._entries.get(request_id)
        if entry is None:
            raise NotFoundError(
                f"no stored prediction for id {request_id!r}: unknown, already used, or evicted "
                "because the memory was full"
            )
        self._drop(request_id)
        if self._clock() - entry.stored_at > self._ttl:
            raise FeedbackExpiredError(
                f"the prediction for id {request_id!r} is older than the feedback TTL "
                f"({self._ttl:g}s)"
            )
        return entry.outputs

    def _drop(self, request_id: str) -> None:
        old = self._entries.pop(request_id, None)
        if old is not None:
            self._rows -= len(old.outputs)

    def _evict(self) -> None:
        # Expired entries are not swept eagerly: they only leave when the limits push them
        # out, so memory stays bounded while a late feedback can still be told "expired"
        # rather than "unknown".
        while len(self._entries) > self._max_entries or self._rows > self._max_rows:
            self._drop(next(iter(self._entries)))
