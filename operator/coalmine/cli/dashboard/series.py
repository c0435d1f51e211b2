"""Each check's canary and stable value over time, measured the way the operator measures.

No PromQL is written here. The operator's measuring code (``coalmine.analysis.measure``)
asks a ``MetricProvider`` for instant queries built from the metric contract and scoped to
the version's series (``SideScope``); this module gives it a provider that answers those
same queries from one Prometheus range query each (``query_range`` over the rollout), sliced
at every step of the range. So the chart's value at time t is what the operator would have
measured at t over the check's analysis window.

The fetch of a range is injected (``RangeFetch``): the tests run this module on fixed
matrices, the dashboard on ``coalmine.cli.dashboard.prometheus``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from coalmine.analysis.measure import measure_check
from coalmine.analysis.provider import QueryResult, Sample
from coalmine.analysis.scope import Scope, SideScope
from coalmine.api import RevisionRef
from coalmine.api.checks import Check, CheckKind
from coalmine.cli.dashboard.view import limit

MAX_POINTS = 120
"""Points per chart: enough to see a step change, few enough for the page to redraw fast."""
CHARTED = frozenset(
    {
        CheckKind.ERROR_RATE,
        CheckKind.LATENCY,
        CheckKind.SATURATION,
        CheckKind.QUALITY,
        CheckKind.PROMQL,
    }
)
"""Kinds measured as one number per side. Drift compares distributions; its score is the
judge's, so its chart shows only the operator's own values (``memory``)."""


@dataclass(frozen=True)
class Matrix:
    """A range query's answer: each series' labels and its values by timestamp (seconds),
    or why there is none."""

    series: tuple[tuple[dict[str, str], dict[float, float]], ...] = ()
    error: str | None = None


RangeFetch = Callable[[str, float, float, float], Matrix]
"""(promql, start, end, step) -> Matrix, all times in seconds since the epoch."""


@dataclass(frozen=True)
class Range:
    start: float
    end: float
    step: float

    def times(self) -> list[float]:
        count = int((self.end - self.start) // self.step) + 1
        return [self.start + i * self.step for i in range(max(count, 0))]


def chart_range(start: datetime, end: datetime, window: timedelta) -> Range:
    """From ``start`` to ``end`` in at most ``MAX_POINTS`` whole-second steps (no finer
    than a second, no coarser than needed); a range that has not begun yet is one point.

    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> chart_range(t0, t0 + timedelta(minutes=10), timedelta(minutes=1)).step
    5.0
    """
    begin, finish = start.timestamp(), max(end.timestamp(), start.timestamp())
    step = max(1.0, float(math.ceil((finish - begin) / (MAX_POINTS - 1))))
    return Range(math.floor(begin), math.ceil(finish), step)


class RangeProvider:
    """Fetches each distinct query once over the whole range; ``at(t)`` is a
    ``MetricProvider`` answering as Prometheus would have at t."""

    def __init__(self, fetch: RangeFetch, span: Range) -> None:
        self._fetch, self._span = fetch, span
        self._matrices: dict[str, Matrix] = {}

    def matrix(self, promql: str) -> Matrix:
        if promql not in self._matrices:
            self._matrices[promql] = self._fetch(
                promql, self._span.start, self._span.end, self._span.step
            )
        return self._matrices[promql]

    @property
    def queries(self) -> int:
        return len(self._matrices)

    def at(self, moment: float) -> _At:
        return _At(self, moment)


@dataclass(frozen=True)
class _At:
    source: RangeProvider
    moment: float

    def query(self, promql: str) -> QueryResult:
        found = self.source.matrix(promql)
        if found.error is not None:
            return QueryResult.provider_error(found.error)
        return QueryResult(
            samples=tuple(
                Sample(labels, values[self.moment])
                for labels, values in found.series
                if self.moment in values
            )
        )


def side_scope(
    model: str, namespace: str, ref: RevisionRef, variant: str, namespace_label: str
) -> SideScope:
    """A side's series as the operator selects them (``coalmine.observe.scope_of``)."""
    return SideScope(
        model=model,
        version=ref.version,
        variant=variant,
        namespace=namespace,
        namespace_label=namespace_label,
        revision=ref.revision,
    )


def check_series(
    fetch: RangeFetch, scope: Scope, checks: Sequence[Check], span: Range
) -> list[dict[str, Any]]:
    """Per charted check: its bound and the canary's (and, when it compares, stable's)
    value at each time of ``span``; ``error`` when Prometheus could not answer."""
    provider = RangeProvider(fetch, span)
    charts = []
    for check in checks:
        if check.kind not in CHARTED:
            charts.append(_operator_only(check))
            continue
        points, errors = [], set()
        for moment in span.times():
            measured = measure_check(provider.at(moment), scope, check)
            for side in (measured.canary, measured.stable):
                if side is not None and side.error:
                    errors.add(side.error)
            points.append(
                {
                    "t": _iso(moment),
                    "canary": _finite(measured.canary.value),
                    "stable": _finite(measured.stable.value) if measured.stable else None,
                }
            )
        charts.append(
            {
                "name": check.name,
                "kind": check.kind,
                "limit": limit(check),
                "comparesWithStable": check.compares_with_stable,
                "points": points,
                "error": "; ".join(sorted(errors)) or None,
            }
        )
    return charts


def _operator_only(check: Check) -> dict[str, Any]:
    """A chart with no Prometheus line: the page draws the operator's own values on it."""
    return {
        "name": check.name,
        "kind": check.kind,
        "limit": limit(check),
        "comparesWithStable": False,
        "points": [],
        "error": None,
    }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
