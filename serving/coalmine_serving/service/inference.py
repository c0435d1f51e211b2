"""The inference service the HTTP layer calls: admission, predict, output metrics, feedback.

It only composes the parts, each in a module of its own: the :class:`Predictor` (load, warm-up,
inline or thread), the :class:`FeedbackJoiner` (delayed ground truth) and, only when fault
settings are on, a :class:`~coalmine_serving.service.faults.FaultInjector` around predict. It
knows settings and runtimes but no HTTP framework.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, NamedTuple

import numpy as np

from coalmine_serving.contract import Variant
from coalmine_serving.errors import OverloadedError
from coalmine_serving.metrics import ServingMetrics
from coalmine_serving.service.faults import with_faults
from coalmine_serving.service.feedback import FeedbackJoiner, merge_batches
from coalmine_serving.service.mirror import Mirror, MirrorConfig
from coalmine_serving.service.predictor import Predictor
from coalmine_serving.settings import ServingSettings

LABELS_PER_SLICE = 256  # about 8 ms of event loop per slice


class InferenceService:
    def __init__(self, settings: ServingSettings, metrics: ServingMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.predictor = Predictor(settings, metrics)
        self.joiner = FeedbackJoiner(settings, metrics)
        self._predict = with_faults(self.predictor.predict, settings, metrics)
        self.mirror = _mirror(settings, metrics)
        self._in_flight = 0  # touched only on the event loop thread
        metrics.track_in_flight(lambda: self._in_flight)

    def admit(self) -> None:
        """Take a concurrency slot or refuse at once (503) rather than queue unbounded work."""
        if self._in_flight >= self.settings.max_concurrency:
            raise OverloadedError(f"more than {self.settings.max_concurrency} requests in flight")
        self._in_flight += 1

    def release(self) -> None:
        self._in_flight -= 1

    async def predict(self, rows: np.ndarray, request_id: str | None) -> Prediction:
        """Predict ``rows``: the outputs, the request id (made up if absent) and the receipt
        a delayed label comes back with."""
        task = self.predictor.require_runtime().signature.task
        outputs = await self._predict(rows)
        self.metrics.record_outputs(task, outputs)
        self.metrics.record_inputs(rows)
        receipt = self.joiner.receipt_for(outputs, task)
        return Prediction(request_id or uuid.uuid4().hex, outputs, receipt)

    def feedback(self, receipt: Any, truth: Any) -> dict[str, Any]:
        """Join one delayed label with the prediction its receipt carries."""
        return self.joiner.join(receipt, truth)

    async def feedback_batch(self, labels: list[Any]) -> dict[str, Any]:
        """Join a batch of labels, each with its own status, a slice at a time.

        A label costs about 30 µs of CPU on the event loop, so 10,000 of them would hold
        every prediction on this pod for a third of a second; between slices the loop
        serves what is waiting."""
        parts: list[dict[str, Any]] = []
        for start in range(0, len(labels), LABELS_PER_SLICE):
            if parts:
                await asyncio.sleep(0)
            parts.append(self.joiner.join_batch(labels[start : start + LABELS_PER_SLICE]))
        return merge_batches(parts)


def _mirror(settings: ServingSettings, metrics: ServingMetrics) -> Mirror | None:
    """Only a stable server mirrors (the canary's pods mount the same file: a canary must
    never mirror to itself), and only when told where to look."""
    if settings.mirror_config_file is None or settings.variant is not Variant.STABLE:
        return None
    return Mirror(
        MirrorConfig(settings.mirror_config_file),
        metrics.shadow,
        queue_size=settings.mirror_queue_size,
        concurrency=settings.mirror_concurrency,
        timeout=settings.mirror_timeout_seconds,
    )


class Prediction(NamedTuple):
    request_id: str
    outputs: np.ndarray
    receipt: str
