"""When each ModelDeployment's next tick is due, and one asyncio task that starts them.

A kopf timer per object woke every object every ``tickSeconds`` only to find, most of the time,
that its tick was not due (a steady object asks for one every 300 s): with 500 objects that
was 100 handler invocations a second, two kopf log lines each, for nothing (docs/benchmarks.md,
B9). Here one task sleeps until the earliest due time, so an object costs nothing between its
ticks, and a tick that becomes due earlier (a child changed, the spec changed) wakes the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)
Key = tuple[str, str]
"""(namespace, name) of a ModelDeployment."""


class Schedule:
    """Due times by object; ``due`` hands out the ones whose time has come, once each."""

    def __init__(self) -> None:
        self._at: dict[Key, float] = {}
        self._heap: list[tuple[float, Key]] = []
        self._changed = asyncio.Event()

    def set(self, key: Key, at: float) -> None:
        """Tick ``key`` at ``at`` (monotonic seconds), replacing any earlier plan for it."""
        self._at[key] = at
        heapq.heappush(self._heap, (at, key))
        self._changed.set()

    def sooner(self, key: Key, at: float) -> None:
        """Tick ``key`` at ``at`` unless it is already due before then."""
        if self._at.get(key, float("inf")) > at:
            self.set(key, at)

    def forget(self, key: Key) -> None:
        self._at.pop(key, None)  # its heap entries are skipped when they come up

    def get(self, key: Key) -> float | None:
        return self._at.get(key)

    def due(self, now: float) -> list[tuple[Key, float]]:
        """Objects due at ``now`` with the time each was due; each leaves the schedule (the
        tick sets its next time when it ends)."""
        ready: list[tuple[Key, float]] = []
        while self._heap and self._heap[0][0] <= now:
            at, key = heapq.heappop(self._heap)
            if self._at.get(key) == at:  # else replaced or forgotten since: a stale entry
                del self._at[key]
                ready.append((key, at))
        return ready

    def next_at(self) -> float | None:
        while self._heap and self._at.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    async def run(self, tick: Callable[[Key, float], Awaitable[None]]) -> None:
        """Forever: start ``tick(key, due)`` for every object as it falls due. Each tick runs as
        its own task (a slow one delays no other); a tick that fails is logged, and the
        failure never ends this loop."""
        running: set[asyncio.Task[None]] = set()
        while True:
            for key, at in self.due(time.monotonic()):
                task = asyncio.create_task(_guarded(tick, key, at))
                running.add(task)
                task.add_done_callback(running.discard)
            await self._sleep()

    async def _sleep(self) -> None:
        self._changed.clear()
        next_at = self.next_at()
        timeout = None if next_at is None else max(0.0, next_at - time.monotonic())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)


async def _guarded(tick: Callable[[Key, float], Awaitable[None]], key: Key, at: float) -> None:
    try:
        await tick(key, at)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s/%s: tick failed", *key)


__all__ = ["Key", "Schedule"]
