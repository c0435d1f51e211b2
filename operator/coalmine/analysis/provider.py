"""The provider protocol: run one instant query, return samples or an error, never raise."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from coalmine.rollout.types import QueryProblem


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class QueryResult:
    """Samples of an instant vector (a scalar is one unlabelled sample), or why there are none.

    ``error`` is a short fixed text (no response body, no URL): it ends up in the status.
    """

    samples: tuple[Sample, ...] = ()
    error: str | None = None
    problem: QueryProblem | None = None

    @classmethod
    def provider_error(cls, reason: str) -> QueryResult:
        return cls(error=reason, problem=QueryProblem.PROVIDER_ERROR)

    @classmethod
    def query_invalid(cls, reason: str) -> QueryResult:
        return cls(error=reason, problem=QueryProblem.QUERY_INVALID)

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
