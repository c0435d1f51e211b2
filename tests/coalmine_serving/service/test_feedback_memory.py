from __future__ import annotations

import numpy as np
import pytest

from coalmine_serving.errors import NotFoundError
from coalmine_serving.service.memory import FeedbackExpiredError, PredictionMemory


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_pop_returns_the_stored_prediction_once() -> None:
    memory = PredictionMemory(60, 10, 100, Clock())
    memory.put("a", np.array([1, 2]))
    assert memory.pop("a").tolist() == [1, 2]
    with pytest.raises(NotFoundError, match="unknown"):
        memory.pop("a")


def test_expired_entries_are_reported_as_expired() -> None:
    clock = Clock()
    memory = PredictionMemory(60, 10, 100, clock)
    memory.put("a", np.array([1]))
    clock.now += 61
    with pytest.raises(FeedbackExpiredError, match="older than"):
        memory.pop("a")


def test_bounded_by_entries_and_rows_under_any_load() -> None:
    memory = PredictionMemory(3600, 100, 1000, Clock())
    for i in range(100_000):
        memory.put(f"id-{i}", np.zeros(1 + i % 50))
        assert len(memory) <= 100 and memory.rows <= 1000
    with pytest.raises(NotFoundError):
        memory.pop("id-0")  # the oldest were evicted first
    assert len(memory.pop("id-99999")) == 1 + 99999 % 50


def test_reusing_an_id_replaces_and_keeps_row_count_right() -> None:
    memory = PredictionMemory(60, 10, 100, Clock())
    memory.put("a", np.zeros(10))
    memory.put("a", np.zeros(3))
    assert memory.rows == 3 and len(memory) == 1


def test_a_batch_larger_than_the_memory_is_not_kept() -> None:
    memory = PredictionMemory(60, 10, 5, Clock())
    memory.put("small", np.zeros(2))
    memory.put("huge", np.zeros(6))
    assert len(memory) == 1 and memory.rows == 2
