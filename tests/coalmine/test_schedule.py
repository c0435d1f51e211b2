"""The tick schedule: due times, replacement, and the loop that starts ticks as they fall due."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from coalmine.schedule import Key, Schedule

A, B = ("ns", "a"), ("ns", "b")


def test_due_hands_out_each_object_once_in_time_order():
    schedule = Schedule()
    schedule.set(B, 20.0)
    schedule.set(A, 10.0)
    assert schedule.due(5.0) == []
    assert schedule.due(25.0) == [(A, 10.0), (B, 20.0)]
    assert schedule.due(30.0) == []
    assert schedule.next_at() is None


def test_a_new_time_replaces_the_old_and_forget_drops_it():
    schedule = Schedule()
    schedule.set(A, 10.0)
    schedule.set(A, 50.0)
    schedule.set(B, 20.0)
    schedule.forget(B)
    assert schedule.next_at() == 50.0
    assert schedule.due(30.0) == []
    assert schedule.due(60.0) == [(A, 50.0)]


def test_sooner_only_moves_a_tick_earlier():
    schedule = Schedule()
    schedule.set(A, 10.0)
    schedule.sooner(A, 30.0)
    assert schedule.get(A) == 10.0
    schedule.sooner(A, 5.0)
    assert schedule.get(A) == 5.0


async def _until(seen: Callable[[], bool], timeout: float = 5.0) -> None:
    """Waits for an observation, so a descheduled test process cannot cancel the loop first."""
    deadline = time.monotonic() + timeout
    while not seen() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def test_the_loop_ticks_due_objects_wakes_for_an_earlier_one_and_survives_a_failure():
    async def scenario() -> list[Key]:
        schedule, ticked = Schedule(), []

        async def tick(key: Key, due: float) -> None:
            ticked.append(key)
            if key == A:
                raise RuntimeError("a bug in one tick")

        now = time.monotonic()
        schedule.set(A, now)
        schedule.set(B, now + 3600)  # the loop sleeps for an hour...
        loop = asyncio.create_task(schedule.run(tick))
        await _until(lambda: A in ticked)
        schedule.sooner(B, time.monotonic())  # ...and is woken for B
        await _until(lambda: B in ticked)
        loop.cancel()
        return ticked

    assert asyncio.run(scenario()) == [A, B]
