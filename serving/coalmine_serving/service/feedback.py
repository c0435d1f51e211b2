"""The feedback join: delayed ground truth meets the prediction this pod stored for its id.

Classifiers count correct and incorrect rows; regressors observe the absolute error per row.
Misses (an id never seen, evicted, or past its time-to-live) are counted by reason, so a rising
rate tells the operator the memory is too small or its TTL too short for the label delay.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from coalmine_serving.contract import FeedbackMissReason, FeedbackResult
from coalmine_serving.errors import BadRequestError, NotFoundError
from coalmine_serving.metrics import ServingMetrics
from coalmine_serving.service.memory import FeedbackExpiredError, PredictionMemory
from coalmine_serving.settings import ServingSettings, Task


class FeedbackJoiner:
    def __init__(self, settings: ServingSettings, metrics: ServingMetrics) -> None:
        self.metrics = metrics
        self.memory = PredictionMemory(
            settings.feedback_horizon_seconds, settings.feedback_dedupe_entries, 1_000_000
        )

    def remember(self, request_id: str, outputs: np.ndarray) -> None:
        self.memory.put(request_id, outputs)

    def join(self, request_id: str, truth: list[Any], task: Task) -> dict[str, Any]:
        """Join ``truth`` with the stored prediction and update the quality metrics."""
        try:
            predicted = self.memory.pop(request_id)
        except FeedbackExpiredError:
            self.metrics.unmatched[FeedbackMissReason.EXPIRED].inc()
            raise
        except NotFoundError:
            self.metrics.unmatched[FeedbackMissReason.UNKNOWN].inc()
            raise
        if len(truth) != len(predicted):
            raise BadRequestError(
                f"'truth' has {len(truth)} values but the request had {len(predicted)} rows"
            )
        if task is Task.CLASSIFICATION:
            return self._classification(request_id, predicted, truth)
        return self._regression(request_id, predicted, truth)

    def _classification(
        self, request_id: str, predicted: np.ndarray, truth: list[Any]
    ) -> dict[str, Any]:
        # Compared as strings so a label sent as 1 or "1" matches a predicted int64 1.
        correct = sum(str(p) == str(t) for p, t in zip(predicted.tolist(), truth, strict=True))
        self.metrics.feedback[FeedbackResult.CORRECT].inc(correct)
        self.metrics.feedback[FeedbackResult.INCORRECT].inc(len(truth) - correct)
        return {"id": request_id, "rows": len(truth), "correct": correct}

    def _regression(
        self, request_id: str, predicted: np.ndarray, truth: list[Any]
    ) -> dict[str, Any]:
        try:
            true_values = np.asarray(truth, dtype=np.float64).reshape(predicted.shape)
        except (TypeError, ValueError) as exc:
            raise BadRequestError(
                f"'truth' must be numbers for a regression model: {exc}"
            ) from None
        if not np.isfinite(true_values).all():
            raise BadRequestError("'truth' contains NaN or infinity")
        errors = np.abs(predicted.astype(np.float64) - true_values).ravel().tolist()
        for error in errors:
            self.metrics.abs_error.observe(error)
        return {"id": request_id, "rows": len(errors), "mean_abs_error": sum(errors) / len(errors)}
