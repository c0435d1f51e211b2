"""The runtime protocol shared by every model format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from coalmine_serving.settings import Task


@dataclass(frozen=True)
class Signature:
    """What the model accepts and returns, used to validate requests before predict."""

    input_name: str
    n_features: int | None  # None when the artifact does not say (then any width is passed on)
    dtype: np.dtype
    output_name: str
    task: Task  # CLASSIFICATION or REGRESSION, never AUTO once loaded


class ModelRuntime(Protocol):
    """A loaded model. ``predict`` takes a 2-D array and returns one output per row."""

    format: str
    signature: Signature

    def predict(self, rows: np.ndarray) -> np.ndarray: ...


def resolve_task(configured: Task, looks_like_classifier: bool) -> Task:
    """An explicit setting wins over what the artifact looks like."""
    if configured is not Task.AUTO:
        return configured
    return Task.CLASSIFICATION if looks_like_classifier else Task.REGRESSION


def warm_up(runtime: ModelRuntime) -> np.ndarray:
    """One prediction on a zero row, so readiness means "can answer", not just "loaded"."""
    width = runtime.signature.n_features
    if width is None:
        raise ValueError("cannot warm up: the model does not declare its number of features")
    out = runtime.predict(np.zeros((1, width), dtype=runtime.signature.dtype))
    if len(out) != 1:
        raise ValueError(f"warm-up returned {len(out)} outputs for 1 row")
    return out
