"""A tick waits for its measurements at most its analysis budget: checks are queried at once,
and one that has not answered by then is a provider error (never a pass, never no data)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from coalmine.analysis import QueryResult, Scope, SideScope, promql
from coalmine.api.canary import CanaryStrategy, Step
from coalmine.api.checks import default_checks
from coalmine.observe import measure_within
from coalmine.rollout.policy import judge_all
from coalmine.rollout.types import SideMeasurement
from tests.coalmine.fakes import FakeProvider, vector

SCOPE = Scope(
    canary=SideScope(model="iris", version="v2", variant="canary", namespace="ns"),
    stable=SideScope(model="iris", version="v1", variant="stable", namespace="ns"),
    window=timedelta(minutes=1),
)


class SilentOnLatency:
    """Answers the error-rate queries at once; latency queries hang until released (a
    Prometheus that accepts the connection and never answers that one)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.queries: list[str] = []

    def query(self, promql: str) -> QueryResult:
        self.queries.append(promql)
        if "bucket" in promql:
            self.release.wait(30)
            return QueryResult(error="released")
        return QueryResult()


class SlowEverywhere:
    """Every query takes ``delay`` seconds, then comes back empty."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def query(self, promql: str) -> QueryResult:
        time.sleep(self.delay)
        return QueryResult()


def test_a_silent_query_costs_the_budget_and_is_a_provider_error() -> None:
    provider = SilentOnLatency()
    checks = default_checks()
    started = time.monotonic()
    try:
        measured = measure_within(provider, SCOPE, checks, budget=0.5)
    finally:
        provider.release.set()
    elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 2.0, elapsed
    by_name = {m.check: m for m in measured}
    assert by_name["error-rate"].canary.error is None  # answered: empty, not an error
    late = by_name["latency-p99"].canary.error
    assert late is not None and "analysis budget of 0.5s" in late
    strategy = CanaryStrategy(steps=[Step(weight=10)])
    verdicts = {v.name: v for v in judge_all(strategy, measured)}
    assert verdicts["latency-p99"].verdict == "inconclusive"
    assert verdicts["latency-p99"].provider_error
    assert not verdicts["error-rate"].provider_error  # no data: its own kind of inconclusive


def test_checks_are_queried_at_once_not_one_after_another() -> None:
    checks = default_checks() + [
        c.model_copy(update={"name": f"{c.name}-{i}"}) for i in range(3) for c in default_checks()
    ]
    started = time.monotonic()
    measured = measure_within(SlowEverywhere(0.3), SCOPE, checks, budget=10.0)
    elapsed = time.monotonic() - started
    assert len(measured) == len(checks) and all(m.canary.error is None for m in measured)
    # One after another: 12 checks x 2 sides x 0.3 s = 7.2 s at least.
    assert elapsed < 2.5, elapsed


def test_no_checks_no_threads() -> None:
    assert measure_within(SlowEverywhere(5), SCOPE, [], budget=0.1) == ()


def test_a_stale_side_is_judged_on_its_staleness_not_on_its_numbers() -> None:
    # The operator's path: freshness is asked beside the checks, and a stale side's numbers
    # are replaced by why it is stale; a side whose own query failed keeps that failure.
    old = FakeProvider({promql.newest_sample_age(SCOPE.canary): vector(({}, 95.4))})
    measured = measure_within(old, SCOPE, default_checks(), budget=5.0)
    stale = SideMeasurement(stale="stale: last sample 95s ago (limit 90s)")
    assert measured and all(m.canary == stale for m in measured)
    assert all(m.stable is None or m.stable.stale is None for m in measured)
