"""Measurements from query results: counts, NaN, empty vectors and provider errors."""

from __future__ import annotations

import math
from datetime import timedelta

from coalmine.analysis import QueryResult, measure_checks, promql
from coalmine.analysis.measure import bucket_counts
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
    SaturationCheck,
)
from coalmine.rollout.types import QueryProblem, SideMeasurement
from tests.coalmine.fakes import FakeProvider, vector

CANARY = SideScope(model="iris", version="v2", variant="canary", namespace="ml")
STABLE = SideScope(model="iris", version="v1", variant="stable", namespace="ml")
SCOPE = Scope(canary=CANARY, stable=STABLE, window=timedelta(seconds=30))
W = "30s"


def test_error_rate_counts_server_errors_only():
    provider = FakeProvider(
        {
            promql.outcome_counts(CANARY, W): vector(
                ({"outcome": "success"}, 76.0),
                ({"outcome": "client_error"}, 4.0),
                ({"outcome": "server_error"}, 20.0),
            ),
            promql.outcome_counts(STABLE, W): vector(({"outcome": "success"}, 200.0)),
        }
    )
    check = Check(name="err", error_rate=ErrorRateCheck(max=0.05, vs_stable=ErrorRateVsStable()))
    (m,) = measure_checks(provider, SCOPE, [check])
    assert m.canary == SideMeasurement(value=0.2, samples=100.0, errors=20.0)
    assert m.stable == SideMeasurement(value=0.0, samples=200.0, errors=0.0)


def test_requests_refused_for_load_are_saturation_not_errors():
    flood = vector(
        ({"outcome": "success"}, 90.0),
        ({"outcome": "server_error"}, 10.0),
        ({"outcome": "shed"}, 800.0),
        ({"outcome": "timeout"}, 100.0),
    )
    provider = FakeProvider({promql.outcome_counts(CANARY, W): flood})
    errors, saturated = measure_checks(
        provider,
        SCOPE,
        [
            Check(name="err", error_rate=ErrorRateCheck(max=0.05)),
            Check(name="sat", saturation=SaturationCheck()),
        ],
    )
    # 10 model errors among 100 served; 900 of 1000 received were refused for load.
    assert errors.canary == SideMeasurement(value=0.1, samples=100.0, errors=10.0)
    assert saturated.canary == SideMeasurement(value=0.9, samples=1000.0, errors=900.0)


def test_a_side_whose_samples_stopped_is_not_measured_but_stale():
    limit = timedelta(seconds=90)
    scope = Scope(canary=CANARY, stable=STABLE, window=timedelta(minutes=5), max_sample_age=limit)
    check = Check(name="err", error_rate=ErrorRateCheck(max=0.05, vs_stable=ErrorRateVsStable()))
    old = FakeProvider({promql.newest_sample_age(CANARY): vector(({}, 95.4))})
    (m,) = measure_checks(old, scope, [check])
    assert m.canary == SideMeasurement(stale="stale: last sample 95s ago (limit 90s)")
    assert m.stable is not None and m.stable.stale is None
    assert promql.outcome_counts(CANARY, "5m") not in old.queries  # the old counts go unread

    gone = FakeProvider({promql.newest_sample_age(STABLE): QueryResult()})
    (m,) = measure_checks(gone, scope, [check])
    assert m.stable == SideMeasurement(
        stale="stale: no current sample of the stable's request counter"
    )
    assert promql.newest_sample_age(CANARY) == (
        "time() - max(timestamp(coalmine_requests_total"
        '{model="iris",version="v2",variant="canary",namespace="ml"}))'
    )


def test_no_traffic_is_no_value_not_zero_errors():
    check = Check(name="err", error_rate=ErrorRateCheck(max=0.05))
    (m,) = measure_checks(FakeProvider(), SCOPE, [check])
    assert m.canary.value is None and m.canary.samples == 0
    assert m.stable is None  # no vsStable: stable is not queried


def test_provider_errors_become_data():
    failing = QueryResult(error="ConnectionError: refused")
    provider = FakeProvider({promql.outcome_counts(CANARY, W): failing})
    (m,) = measure_checks(provider, SCOPE, [Check(name="e", error_rate=ErrorRateCheck(max=0.1))])
    assert m.canary.error == "ConnectionError: refused" and m.canary.value is None


def test_latency_nan_is_no_value():
    provider = FakeProvider(
        {
            promql.latency_quantile(CANARY, W, 0.99): vector(({}, math.nan)),
            promql.latency_count(CANARY, W): vector(({}, 0.0)),
        }
    )
    (m,) = measure_checks(provider, SCOPE, [Check(name="l", latency=LatencyCheck(max_seconds=0.5))])
    assert m.canary.value is None and m.canary.samples == 0.0


def test_latency_vs_stable_returns_both_sides_histograms():
    def side(scope: SideScope, slow: float) -> dict[str, QueryResult]:
        buckets = vector(
            ({"le": "0.05"}, 90.0), ({"le": "0.1"}, 100.0 - slow), ({"le": "+Inf"}, 100.0)
        )
        return {
            promql.latency_quantile(scope, W, 0.99): vector(({}, 0.09)),
            promql.latency_count(scope, W): vector(({}, 100.0)),
            promql.latency_buckets(scope, W): buckets,
        }

    provider = FakeProvider({**side(CANARY, 5.0), **side(STABLE, 0.0)})
    check = Check(name="l", latency=LatencyCheck(vs_stable=LatencyVsStable()))
    (m,) = measure_checks(provider, SCOPE, [check])
    assert m.canary.latency_buckets == ((0.05, 90.0), (0.1, 95.0), (math.inf, 100.0))
    assert m.stable is not None
    assert m.stable.latency_buckets == ((0.05, 90.0), (0.1, 100.0), (math.inf, 100.0))
    assert m.canary.value == 0.09 and m.canary.samples == 100.0


def test_accuracy_from_feedback_counts():
    provider = FakeProvider(
        {
            promql.feedback_counts(CANARY, W): vector(
                ({"result": "correct"}, 60.0), ({"result": "incorrect"}, 40.0)
            )
        }
    )
    (m,) = measure_checks(provider, SCOPE, [Check(name="q", quality=QualityCheck(min=0.9))])
    assert m.canary == SideMeasurement(value=0.6, samples=100.0, correct=60.0)


def test_refused_labels_ride_along_with_the_canary_quality_record():
    provider = FakeProvider(
        {
            promql.feedback_counts(CANARY, W): vector(({"result": "correct"}, 9.0)),
            promql.refused_labels(CANARY, W): vector(
                ({"reason": "duplicate"}, 3.2), ({"reason": "forged"}, 0.1)
            ),
        }
    )
    check = Check(name="q", quality=QualityCheck(min=0.5, min_labels=1))
    (m,) = measure_checks(provider, SCOPE, [check])
    assert m.canary.refused == (("duplicate", 3),)  # rounded; zero counts left out


def test_drift_measures_both_distributions():
    provider = FakeProvider(
        {
            promql.class_counts(CANARY, W): vector(({"class": "1"}, 5.0), ({"class": "0"}, 15.0)),
            promql.class_counts(STABLE, W): vector(({"class": "0"}, 50.0)),
        }
    )
    (m,) = measure_checks(provider, SCOPE, [Check(name="d", drift=DriftCheck())])
    assert m.canary.distribution == (("0", 15.0), ("1", 5.0)) and m.canary.samples == 20.0
    assert m.stable is not None and m.stable.distribution == (("0", 50.0),)


def test_regressor_drift_falls_back_to_histogram_buckets():
    cumulative = vector(({"le": "1.0"}, 3.0), ({"le": "+Inf"}, 8.0), ({"le": "5.0"}, 7.0))
    provider = FakeProvider({promql.value_buckets(CANARY, W): cumulative})
    (m,) = measure_checks(provider, SCOPE, [Check(name="d", drift=DriftCheck())])
    assert dict(m.canary.distribution) == {"1.0": 3.0, "5.0": 4.0, "+Inf": 1.0}
    assert bucket_counts({}) == {}


INPUTS = DriftCheck.model_validate(
    {"inputs": [{"name": "petal_width", "index": 3, "edges": [0.5, 1.5]},
                {"name": "sepal_length", "index": 0, "edges": [5, 6]}]}
)  # fmt: skip


def _input_series(
    feature: str, *cumulative: tuple[str, float]
) -> list[tuple[dict[str, str], float]]:
    return [({"feature": feature, "le": le}, count) for le, count in cumulative]


def test_input_drift_measures_each_named_feature_per_bucket_on_both_sides():
    canary = vector(
        *_input_series("petal_width", ("0.5", 10.0), ("1.5", 30.0), ("+Inf", 100.0)),
        *_input_series("sepal_length", ("+Inf", 100.0), ("5.0", 40.0), ("6.0", 70.0)),
        *_input_series("other_check_s", ("1.0", 5.0), ("+Inf", 100.0)),  # not this check's
    )
    stable = vector(
        *_input_series("petal_width", ("0.5", 50.0), ("1.5", 150.0), ("+Inf", 300.0)),
        ({"feature": "sepal_length", "le": "5.0"}, math.nan),
    )
    provider = FakeProvider(
        {promql.input_buckets(CANARY, W): canary, promql.input_buckets(STABLE, W): stable}
    )

    (m,) = measure_checks(provider, SCOPE, [Check(name="d", drift=INPUTS)])

    assert m.canary.features == (
        ("petal_width", (("0.5", 10.0), ("1.5", 20.0), ("+Inf", 70.0))),
        ("sepal_length", (("5.0", 40.0), ("6.0", 30.0), ("+Inf", 30.0))),
    )
    assert m.canary.samples == 100.0 and m.canary.distribution == ()
    # A feature stable does not bucket (NaN dropped): no pairs, and no samples to judge on.
    assert m.stable is not None and m.stable.samples == 0
    assert dict(m.stable.features)["sepal_length"] == ()
    assert provider.queries == [
        promql.newest_sample_age(CANARY),
        promql.newest_sample_age(STABLE),
        promql.input_buckets(CANARY, W),
        promql.input_buckets(STABLE, W),
    ]


def test_input_drift_query_reads_the_contract_series_by_feature_and_bucket():
    query = promql.input_buckets(CANARY, W)
    assert query == (
        'sum by (feature, le) (increase(coalmine_input_feature_bucket{model="iris",'
        'version="v2",variant="canary",namespace="ml"}[30s]))'
    )
    failing = FakeProvider({query: QueryResult(error="timeout")})
    (m,) = measure_checks(failing, SCOPE, [Check(name="d", drift=INPUTS)])
    assert m.canary.error == "timeout"


def test_custom_query_rejects_several_series_and_renders_both_sides():
    check = Check(name="c", promql=PromQLCheck(query='up{version="{{version}}"}', max_ratio=2.0))
    provider = FakeProvider(
        {
            'up{namespace="ml",version="v2"}': vector(({"a": "1"}, 1.0), ({"a": "2"}, 1.0)),
            'up{namespace="ml",version="v1"}': vector(({}, 3.0)),
        }
    )
    (m,) = measure_checks(provider, SCOPE, [check])
    assert m.canary.error == "query returned 2 series, expected 1"
    assert m.canary.problem == QueryProblem.QUERY_INVALID
    assert m.stable == SideMeasurement(value=3.0)
