"""The provider protocol: run one instant query, return samples or an error, never raise."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class QueryResult:
    """Samples of an instant vector, or why there are none."""

    samples: tuple[Sample, ...] = ()
    error: str | None = None

    def by(self, label: str) -> dict[str, float]:
        """Finite values keyed by one label (NaN and ±Inf dropped: they are not counts)."""
        return {s.labels.get(label, ""): s.value for s in self.samples if math.isfinite(s.value)}

    def scalar(self) -> float | None:
        """The one finite value of a single-series result; None when empty or NaN."""
        if len(self.samples) != 1 or not math.isfinite(self.samples[0].value):
            return None
        return self.samples[0].value


class MetricProvider(Protocol):
    def query(self, promql: str) -> QueryResult:
        """Evaluate ``promql`` now; failures come back in ``QueryResult.error``."""
        ...
