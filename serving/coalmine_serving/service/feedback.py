"""The label join: a delayed true label meets the prediction its receipt carries.

It needs no model: the receipt says what was predicted and whether by a classifier, so a pod
still loading (or of another version) joins labels as well as the one that predicted.

Any pod of the ModelDeployment can join any label: the receipt holds the prediction and who
made it (see :mod:`coalmine_serving.service.receipts`), and the counts go under that origin's
labels. Classifiers count correct and incorrect rows; regressors observe the absolute error per
row. Labels that are not joined are counted by reason and answered with a 4xx: forged (403),
unknown key (404), duplicate (409), expired (410). A label whose truth does not fit its
prediction gets 400 and is not remembered, so the pipeline can send a corrected one.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson

from coalmine_serving.contract import FeedbackMissReason, FeedbackResult
from coalmine_serving.errors import (
    BadRequestError,
    DuplicateLabelError,
    ExpiredLabelError,
    ForgedReceiptError,
    ServingError,
    UnknownKeyError,
)
from coalmine_serving.metrics import ServingMetrics
from coalmine_serving.service.joined import JoinedReceipts
from coalmine_serving.service.receipts import KeyRing, Origin, Receipt, ReceiptBook
from coalmine_serving.settings import ServingSettings, Task

MISS_REASONS: dict[type[ServingError], FeedbackMissReason] = {
    ForgedReceiptError: FeedbackMissReason.FORGED,
    UnknownKeyError: FeedbackMissReason.UNKNOWN,
    DuplicateLabelError: FeedbackMissReason.DUPLICATE,
    ExpiredLabelError: FeedbackMissReason.EXPIRED,
}


class FeedbackJoiner:
    def __init__(
        self,
        settings: ServingSettings,
        metrics: ServingMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.metrics = metrics
        self._horizon = settings.feedback_horizon_seconds
        self._clock = clock
        origin = Origin(settings.model_version, settings.variant.value, settings.revision)
        keys = KeyRing(settings.receipt_keys_file, clock)
        self.receipts = ReceiptBook(keys, settings.model_name, origin, clock)
        self.joined = JoinedReceipts(settings.feedback_dedupe_entries)

    def receipt_for(self, outputs: np.ndarray, task: Task) -> str:
        """The receipt a prediction is answered with."""
        classifier = task is Task.CLASSIFICATION
        if outputs.dtype.kind in "biuf":
            return self.receipts.issue(outputs.tolist(), classifier)
        return self.receipts.issue([str(item) for item in outputs.ravel().tolist()], classifier)

    def join(self, token: Any, truth: Any) -> dict[str, Any]:
        """Join one label; raises the ServingError its rejection answers with."""
        try:
            receipt = self._admit(token)
        except ServingError as error:
            if reason := MISS_REASONS.get(type(error)):
                self.metrics.unmatched[reason].inc()
            raise
        predicted = np.asarray(receipt.outputs)
        rows = truth if isinstance(truth, list) else [truth]
        if len(rows) != len(predicted):
            raise BadRequestError(
                f"'truth' has {len(rows)} values but the prediction had {len(predicted)} rows"
            )
        if receipt.classifier:
            summary = self._classification(receipt.origin, predicted, rows)
        else:
            summary = self._regression(receipt.origin, predicted, rows)
        self.joined.add(receipt.mac, receipt.issued_at)
        version, variant, _ = receipt.origin
        return {"version": version, "variant": variant, **summary}

    def join_batch(self, labels: Sequence[Any]) -> dict[str, Any]:
        """Join a batch: every label gets its own status; one bad label spoils no other."""
        results: list[dict[str, Any]] = []
        rejected: Counter[str] = Counter()
        rows = 0
        for item in labels:
            try:
                token, truth = _label_fields(item)
                summary = self.join(token, truth)
            except ServingError as error:
                reason = MISS_REASONS.get(type(error))
                rejected[reason.value if reason else "invalid"] += 1
                results.append({"status": error.status, "error": error.message})
                continue
            rows += summary["rows"]
            results.append({"status": 200})
        joined = len(labels) - rejected.total()
        return {"joined": joined, "rows": rows, "rejected": dict(rejected), "results": results}

    def _admit(self, token: Any) -> Receipt:
        if not isinstance(token, str) or not token or len(token) > 1_000_000:
            raise BadRequestError("each label needs 'receipt': the receipt of its prediction")
        try:
            receipt = self.receipts.open(token)
        except (ValueError, TypeError, orjson.JSONDecodeError):
            raise ForgedReceiptError("'receipt' is not a prediction receipt") from None
        age = self._clock() - receipt.issued_at
        if age > self._horizon:
            raise ExpiredLabelError(
                f"the prediction is {age:.0f}s old, past the feedback horizon "
                f"({self._horizon:.0f}s)"
            )
        if receipt.mac in self.joined:
            raise DuplicateLabelError("this prediction already has a label")
        if self.joined.too_old(receipt.issued_at):
            raise ExpiredLabelError(
                "the prediction is older than the labels this pod still remembers joining "
                "(its duplicate memory is full), so it cannot be counted safely here"
            )
        return receipt

    def _classification(
        self, origin: Origin, predicted: np.ndarray, truth: list[Any]
    ) -> dict[str, Any]:
        # Compared as strings so a label sent as 1 or "1" matches a predicted 1.
        correct = sum(str(p) == str(t) for p, t in zip(predicted.tolist(), truth, strict=True))
        self.metrics.feedback.count(origin, FeedbackResult.CORRECT.value, correct)
        self.metrics.feedback.count(origin, FeedbackResult.INCORRECT.value, len(truth) - correct)
        return {"rows": len(truth), "correct": correct}

    def _regression(
        self, origin: Origin, predicted: np.ndarray, truth: list[Any]
    ) -> dict[str, Any]:
        try:
            true_values = np.asarray(truth, dtype=np.float64).reshape(predicted.shape)
            errors = np.abs(predicted.astype(np.float64) - true_values).ravel()
        except (TypeError, ValueError) as exc:
            raise BadRequestError(
                f"'truth' must be numbers for a regression model: {exc}"
            ) from None
        if not np.isfinite(errors).all():
            raise BadRequestError("'truth' contains NaN or infinity")
        histogram = self.metrics.feedback.errors(origin)
        for error in errors.tolist():
            histogram.observe(error)
        return {"rows": len(errors), "meanAbsoluteError": float(errors.mean())}


def merge_batches(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One batch answer from the answers of its slices, in order."""
    rejected: Counter[str] = Counter()
    for part in parts:
        rejected.update(part["rejected"])
    return {
        "joined": sum(part["joined"] for part in parts),
        "rows": sum(part["rows"] for part in parts),
        "rejected": dict(rejected),
        "results": [result for part in parts for result in part["results"]],
    }


def _label_fields(item: Any) -> tuple[Any, Any]:
    if not isinstance(item, dict) or "truth" not in item:
        raise BadRequestError("each label must be an object with 'receipt' and 'truth'")
    return item.get("receipt"), item["truth"]
