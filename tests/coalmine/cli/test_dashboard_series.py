"""Checks over time: the operator's own measuring code, fed by range queries (fixed matrices)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from coalmine.analysis import promql
from coalmine.analysis.scope import Scope
from coalmine.api import RevisionRef
from coalmine.api.checks import Check
from coalmine.cli.dashboard.prometheus import parse_matrix
from coalmine.cli.dashboard.series import Matrix, Range, chart_range, check_series, side_scope

T0 = 1_800_000_000.0
CANARY = side_scope(
    "iris", "ml", RevisionRef(revision="r2", version="v2", uri=""), "canary", "namespace"
)
STABLE = side_scope(
    "iris", "ml", RevisionRef(revision="r1", version="v1", uri=""), "stable", "namespace"
)
SCOPE = Scope(canary=CANARY, stable=STABLE, window=timedelta(seconds=30))
SPAN = Range(T0, T0 + 10, 5)


class Fetch:
    """Answers each known query text with its matrix; records what was asked."""

    def __init__(self, answers: dict[str, Matrix]) -> None:
        self.answers, self.asked = answers, []  # type: ignore[var-annotated]

    def __call__(self, query: str, start: float, end: float, step: float) -> Matrix:
        self.asked.append((query, start, end, step))
        return self.answers.get(query, Matrix())


def outcomes(ok: list[float], errors: list[float]) -> Matrix:
    times = SPAN.times()
    return Matrix(
        series=(
            ({"outcome": "ok"}, dict(zip(times, ok, strict=True))),
            ({"outcome": "server_error"}, dict(zip(times, errors, strict=True))),
        )
    )


def error_rate(**settings: object) -> Check:
    return Check.model_validate({"name": "error-rate", "errorRate": settings})


def test_error_rate_over_time_is_the_operators_ratio_from_its_own_queries() -> None:
    canary_query = promql.outcome_counts(CANARY, "30s")
    fetch = Fetch({canary_query: outcomes([90, 90, 80], [10, 0, 20])})
    (chart,) = check_series(fetch, SCOPE, [error_rate(max=0.05)], SPAN)
    assert [p["canary"] for p in chart["points"]] == [0.1, 0.0, 0.2]
    assert chart["limit"] == {"op": "<=", "value": 0.05}
    assert chart["error"] is None and chart["comparesWithStable"] is False
    # One range query, the very text the operator sends, over the chart's range.
    assert fetch.asked == [(canary_query, T0, T0 + 10, 5)]
    assert all(p["stable"] is None for p in chart["points"])


def test_a_comparison_with_stable_charts_both_sides() -> None:
    fetch = Fetch(
        {
            promql.outcome_counts(CANARY, "30s"): outcomes([9, 9, 9], [1, 1, 1]),
            promql.outcome_counts(STABLE, "30s"): outcomes([99, 98, 100], [1, 2, 0]),
        }
    )
    (chart,) = check_series(fetch, SCOPE, [error_rate(vsStable={})], SPAN)
    assert [p["stable"] for p in chart["points"]] == [0.01, 0.02, 0.0]
    assert chart["comparesWithStable"] and chart["limit"] is None


def test_no_traffic_is_a_gap_not_a_zero() -> None:
    (chart,) = check_series(Fetch({}), SCOPE, [error_rate(max=0.05)], SPAN)
    assert [p["canary"] for p in chart["points"]] == [None, None, None]


def test_a_failed_range_query_is_said_on_the_chart() -> None:
    def down(query: str, start: float, end: float, step: float) -> Matrix:
        return Matrix(error="Prometheus unreachable")

    (chart,) = check_series(down, SCOPE, [error_rate(max=0.05)], SPAN)
    assert chart["error"] == "Prometheus unreachable"


def test_drift_is_charted_from_the_operators_values_only() -> None:
    drift = Check.model_validate({"name": "drift", "drift": {"max": 0.2}})
    fetch = Fetch({})
    (chart,) = check_series(fetch, SCOPE, [drift], SPAN)
    assert chart["points"] == [] and chart["limit"] == {"op": "<=", "value": 0.2}
    assert fetch.asked == []


def test_chart_range_has_at_most_120_whole_second_steps() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    short = chart_range(t0, t0 + timedelta(seconds=20), timedelta(seconds=6))
    assert (short.step, len(short.times())) == (1.0, 21)
    long = chart_range(t0, t0 + timedelta(hours=2), timedelta(minutes=1))
    assert len(long.times()) <= 120 and long.step == 61.0
    assert len(chart_range(t0, t0 - timedelta(seconds=5), timedelta(seconds=6)).times()) == 1


def test_parse_matrix_refuses_anything_but_a_range_result() -> None:
    assert parse_matrix(b"not json").error == "Prometheus answered a malformed range result"
    vector = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
    assert parse_matrix(vector).error == "Prometheus answered without a range result"
    assert parse_matrix(b'{"status":"success","data":{"resultType":"matrix"}}').error
