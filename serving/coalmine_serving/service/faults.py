"""Fault injection for chaos drills and rollback tests, wrapped around predict only when asked.

:func:`with_faults` returns ``predict`` itself unless a fault setting is on, so a production
server runs no fault code at all, not even a flag test per request. The faults sit in front of
the model's predict, on the event loop (an ``asyncio.sleep``, never a blocked worker thread),
so injected latency neither occupies predict threads nor skews the inline-or-thread timing.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import numpy as np

from coalmine_serving.errors import ServingError
from coalmine_serving.metrics import ServingMetrics
from coalmine_serving.settings import ServingSettings

Predict = Callable[[np.ndarray], Awaitable[np.ndarray]]


def with_faults(predict: Predict, settings: ServingSettings, metrics: ServingMetrics) -> Predict:
    """``predict`` unchanged, or wrapped in a :class:`FaultInjector` when faults are set."""
    if not (settings.fault_error_rate or settings.fault_latency_seconds):
        return predict
    return FaultInjector(predict, settings, metrics)


class FaultInjector:
    """Adds latency and 500s to a share of predicts, counting each in the faults metric."""

    def __init__(
        self, predict: Predict, settings: ServingSettings, metrics: ServingMetrics
    ) -> None:
        self._predict = predict
        self._settings = settings
        self._faults = metrics.faults
        self._random = random.Random()

    async def __call__(self, rows: np.ndarray) -> np.ndarray:
        settings = self._settings
        if settings.fault_latency_seconds and self._random.random() < settings.fault_latency_rate:
            self._faults["latency"].inc()
            await asyncio.sleep(settings.fault_latency_seconds)
        if settings.fault_error_rate and self._random.random() < settings.fault_error_rate:
            self._faults["error"].inc()
            raise ServingError("injected fault (fault_error_rate is set on this server)", 500)
        return await self._predict(rows)
