"""The PromQL templates: exact text, scoped to {model, version, variant, namespace}."""

from __future__ import annotations

from datetime import timedelta

from coalmine.analysis import promql
from coalmine.analysis.scope import Scope, SideScope

CANARY = SideScope(model="iris", version="v2", variant="canary", namespace="ml")
SEL = '{model="iris",version="v2",variant="canary",namespace="ml"}'


def test_error_counts_use_increase_for_counts():
    assert promql.outcome_counts(CANARY, "30s") == (
        f"sum by (outcome) (increase(coalmine_requests_total{SEL}[30s]))"
    )


def test_latency_quantile_from_the_request_histogram():
    assert promql.latency_quantile(CANARY, "30s", 0.99) == (
        "histogram_quantile(0.99, sum by (le) "
        f"(rate(coalmine_request_duration_seconds_bucket{SEL}[30s])))"
    )
    assert promql.latency_count(CANARY, "30s") == (
        f"sum(increase(coalmine_request_duration_seconds_count{SEL}[30s]))"
    )


def test_labels_count_for_the_revision_that_predicted_and_refusals_for_the_deployment():
    retried = SideScope(
        model="iris", version="v2", variant="canary", namespace="ml", revision="abc123"
    )
    assert promql.feedback_counts(retried, "1m") == (
        "sum by (result) (increase(coalmine_feedback_total"
        '{model="iris",version="v2",variant="canary",namespace="ml",revision="abc123"}[1m]))'
    )
    assert promql.refused_labels(retried, "1m") == (
        "sum by (reason) (increase(coalmine_feedback_unmatched_total"
        '{model="iris",namespace="ml"}[1m]))'
    )


def test_every_series_of_a_side_is_scoped_by_its_revision():
    """A retried canary of the same version is a new revision: it starts from zero counts."""
    retried = SideScope(
        model="iris", version="v2", variant="canary", namespace="ml", revision="abc123"
    )
    sel = '{model="iris",version="v2",variant="canary",namespace="ml",revision="abc123"}'
    for query in (
        promql.outcome_counts(retried, "1m"),
        promql.latency_quantile(retried, "1m", 0.99),
        promql.latency_count(retried, "1m"),
        promql.class_counts(retried, "1m"),
        promql.value_buckets(retried, "1m"),
        promql.input_buckets(retried, "1m"),
        promql.abs_error_sum(retried, "1m"),
    ):
        assert sel + "[1m]" in query


def test_quality_and_drift_templates():
    assert promql.feedback_counts(CANARY, "1m") == (
        f"sum by (result) (increase(coalmine_feedback_total{SEL}[1m]))"
    )
    assert promql.class_counts(CANARY, "1m") == (
        f"sum by (class) (increase(coalmine_predictions_total{SEL}[1m]))"
    )
    assert promql.value_buckets(CANARY, "1m").startswith(
        "sum by (le) (increase(coalmine_prediction_value_bucket{"
    )


def test_namespace_scoping_can_be_disabled():
    side = SideScope(
        model="iris", version="v1", variant="stable", namespace="ml", namespace_label=""
    )
    assert side.matchers() == '{model="iris",version="v1",variant="stable"}'


def test_label_values_are_escaped():
    side = SideScope(model='a"b', version="v", variant="canary", namespace="n")
    assert 'model="a\\"b"' in side.matchers()


def test_custom_placeholders_are_filled():
    query = (
        'sum(rate(x{model="{{model}}",version="{{ version }}",'
        'v="{{variant}}",ns="{{namespace}}"}[{{window}}]))'
    )
    assert promql.render_custom(query, CANARY, "20s") == (
        'sum(rate(x{model="iris",version="v2",v="canary",ns="ml"}[20s]))'
    )


def test_scope_range_is_a_prometheus_duration():
    scope = Scope(canary=CANARY, stable=None, window=timedelta(seconds=90))
    assert scope.range == "1m30s"


def test_a_step_aged_to_a_fraction_of_a_second_queries_whole_seconds():
    scope = Scope(canary=CANARY, stable=None, window=timedelta(seconds=150, microseconds=250_000))
    assert scope.range == "2m31s"
