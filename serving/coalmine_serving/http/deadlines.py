"""Per-request deadlines for inference, enforced by one periodic sweep.

A sweep task cancels requests past their deadline (reading a slow body or predicting), at most
``timeout / 4`` (capped at 50 ms) late. It runs only while requests are in flight: a dict insert
and delete per request is cheaper than ``call_later`` and its cancel.
"""

from __future__ import annotations

import asyncio
from typing import Any


class Deadlines:
    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._interval = min(timeout / 4, 0.05)
        self._due: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def add(self, task: asyncio.Task[Any]) -> None:
        loop = task.get_loop()
        self._due[task] = loop.time() + self._timeout
        if self._sweeper is None:
            self._sweeper = loop.create_task(self._sweep(loop))

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()

    def expired(self, task: asyncio.Task[Any]) -> bool:
        return task in self._expired

    def remove(self, task: asyncio.Task[Any]) -> None:
        self._due.pop(task, None)
        self._expired.discard(task)

    async def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while self._due:
                await asyncio.sleep(self._interval)
                now = loop.time()
                for task, due in list(self._due.items()):
                    if due <= now:
                        del self._due[task]
                        self._expired.add(task)
                        task.cancel()
        finally:
            self._sweeper = None  # the next request starts a new sweep
