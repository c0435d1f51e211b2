"""A tick's queries in one request: the same measurements as query by query, from one call.

Pure logic with a fake of our own provider interface; the combined query on a real
Prometheus is in test_prometheus_integration.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from coalmine.analysis import QueryResult, promql
from coalmine.analysis.batch import queries_of
from coalmine.analysis.prometheus import QUERY_LABEL, split
from coalmine.analysis.provider import Sample
from coalmine.analysis.scope import Scope, SideScope
from coalmine.api import Check
from coalmine.api.checks import (
    DriftCheck,
    ErrorRateCheck,
    ErrorRateVsStable,
    LatencyCheck,
    LatencyVsStable,
    PromQLCheck,
    QualityCheck,
)
from coalmine.observe import measure_within
from coalmine.rollout.types import QueryProblem
from tests.coalmine.fakes import FakeProvider, vector

CANARY = SideScope(model="iris", version="v2", variant="canary", namespace="ml")
STABLE = SideScope(model="iris", version="v1", variant="stable", namespace="ml")
SCOPE = Scope(canary=CANARY, stable=STABLE, window=timedelta(seconds=30))
W = "30s"
P99 = LatencyCheck(max_seconds=0.5, vs_stable=LatencyVsStable())
CHECKS = [
    Check(name="errors", error_rate=ErrorRateCheck(max=0.05, vs_stable=ErrorRateVsStable())),
    Check(name="p99", latency=P99),
    Check(name="accuracy", quality=QualityCheck(min=0.9)),
    Check(name="drift", drift=DriftCheck()),
]
ANSWERS = {
    promql.outcome_counts(CANARY, W): vector(
        ({"outcome": "success"}, 90.0), ({"outcome": "server_error"}, 10.0)
    ),
    promql.outcome_counts(STABLE, W): vector(({"outcome": "success"}, 300.0)),
    promql.latency_quantile(CANARY, W, P99.quantile): vector(({}, 0.2)),
    promql.latency_count(CANARY, W): vector(({}, 100.0)),
    promql.latency_buckets(CANARY, W): vector(({"le": "0.1"}, 60.0), ({"le": "+Inf"}, 100.0)),
    promql.feedback_counts(CANARY, W): vector(
        ({"result": "correct"}, 40.0), ({"result": "incorrect"}, 2.0)
    ),
    promql.class_counts(STABLE, W): vector(({"class": "a"}, 30.0), ({"class": "b"}, 70.0)),
    promql.newest_sample_age(STABLE): vector(({}, 200.0)),  # stable's scrapes stopped
}  # fmt: skip


class Batching(FakeProvider):
    """Our provider interface's batching form, answering from the same table."""

    def __init__(self, answers: dict[str, QueryResult], together: bool = True) -> None:
        super().__init__(answers)
        self.together, self.requests = together, 0

    def query_many(self, queries: Sequence[str]) -> list[QueryResult] | None:
        self.requests += 1
        if not self.together:
            return None
        asked = len(self.queries)
        results = [self.query(q) for q in queries]
        del self.queries[asked:]  # one request, not one a query
        return results


def test_one_request_measures_what_query_by_query_measures() -> None:
    one_by_one = measure_within(FakeProvider(ANSWERS), SCOPE, CHECKS, budget=5.0)
    batching = Batching(ANSWERS)

    together = measure_within(batching, SCOPE, CHECKS, budget=5.0)

    assert together == one_by_one
    assert batching.requests == 1 and batching.queries == []
    assert together[0].canary.value == 0.1 and together[0].stable is not None
    assert together[0].stable.stale is not None  # the stable side's freshness still decides


def test_the_queries_are_each_asked_once_freshness_first() -> None:
    asked = queries_of(SCOPE, CHECKS)
    assert asked[:2] == [promql.newest_sample_age(CANARY), promql.newest_sample_age(STABLE)]
    assert len(asked) == len(set(asked))
    # An empty answer asks the most: the drift check's output buckets, asked when it finds
    # no class, are among them.
    assert promql.value_buckets(CANARY, W) in asked


def test_a_provider_that_cannot_batch_is_asked_query_by_query() -> None:
    refusing = Batching(ANSWERS, together=False)
    measured = measure_within(refusing, SCOPE, CHECKS, budget=5.0)
    assert measured == measure_within(FakeProvider(ANSWERS), SCOPE, CHECKS, budget=5.0)
    assert refusing.requests == 1 and len(refusing.queries) > 1


def test_a_custom_query_is_never_batched() -> None:
    checks = [*CHECKS, Check(name="custom", promql=PromQLCheck(query="vector(1)", max=2.0))]
    batching = Batching(ANSWERS)
    measure_within(batching, SCOPE, checks, budget=5.0)
    assert batching.requests == 0 and "vector(1)" in " ".join(batching.queries)


def test_a_combined_answer_is_split_by_its_index_label() -> None:
    answer = QueryResult(
        samples=(
            Sample({QUERY_LABEL: "1", "outcome": "success"}, 5.0),
            Sample({QUERY_LABEL: "0"}, 2.0),
            Sample({QUERY_LABEL: "1", "outcome": "server_error"}, 1.0),
        )
    )
    first, second, third = split(answer, 3)  # type: ignore[misc]
    assert first.samples == (Sample({}, 2.0),)
    assert second.by("outcome") == {"success": 5.0, "server_error": 1.0}
    assert third == QueryResult()


def test_a_failed_combined_request_is_every_querys_failure() -> None:
    failed = QueryResult.provider_error("Prometheus did not answer in time")
    assert split(failed, 2) == [failed, failed]
    assert failed.problem is QueryProblem.PROVIDER_ERROR


def test_a_series_without_our_index_is_not_guessed_at() -> None:
    stray = QueryResult(samples=(Sample({"outcome": "success"}, 1.0),))
    assert split(stray, 2) is None
    beyond = QueryResult(samples=(Sample({QUERY_LABEL: "2"}, 1.0),))
    assert split(beyond, 2) is None
