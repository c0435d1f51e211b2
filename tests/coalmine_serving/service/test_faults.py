"""Fault injection exists only on servers configured for it."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from coalmine_serving.errors import ServingError
from coalmine_serving.metrics import ServingMetrics
from coalmine_serving.service.faults import FaultInjector, with_faults
from coalmine_serving.settings import load_settings


async def _echo(rows: np.ndarray) -> np.ndarray:
    return rows


def test_without_fault_settings_predict_is_not_wrapped() -> None:
    settings = load_settings()
    assert with_faults(_echo, settings, ServingMetrics(settings)) is _echo


def test_fault_settings_wrap_predict_and_count_each_fault() -> None:
    settings = load_settings(fault_error_rate=1.0, fault_latency_seconds=0.001)
    metrics = ServingMetrics(settings)
    predict = with_faults(_echo, settings, metrics)
    assert isinstance(predict, FaultInjector)
    with pytest.raises(ServingError, match="injected fault") as raised:
        asyncio.run(predict(np.zeros((1, 4))))
    assert raised.value.status == 500
    labels = {"model": "model", "version": "1", "variant": "stable", "revision": ""}
    for kind in ("latency", "error"):
        count = metrics.registry.get_sample_value(
            "coalmine_injected_faults_total", {**labels, "kind": kind}
        )
        assert count == 1
