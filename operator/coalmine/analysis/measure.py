"""Measure the spec's checks for the canary and, where a check compares, for stable.

One function per ``CheckKind`` measures one side; ``MEASURES`` registers them (a test checks
that every kind has one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from coalmine.analysis import promql
from coalmine.analysis.freshness import staleness
from coalmine.analysis.provider import MetricProvider, QueryResult
from coalmine.analysis.scope import Scope, SideScope
from coalmine.analysis.scoping import UnscopableQueryError, scope_to_namespace
from coalmine.api.checks import Check, CheckKind
from coalmine.rollout.types import Measurement, QueryProblem, SideMeasurement
from coalmine_serving import contract

SideFn = Callable[[MetricProvider, SideScope, str, Check], SideMeasurement]


def measure_checks(
    provider: MetricProvider, scope: Scope, checks: Sequence[Check]
) -> tuple[Measurement, ...]:
    """One ``Measurement`` per check, in spec order; a stale side is not measured at all,
    its measurement says why (the freshness guard, asked once per side)."""
    stale = {
        which: staleness(provider, side, scope.max_sample_age)
        for which, side in judged_sides(scope, checks).items()
    }
    return tuple(
        measure_check(provider, scope, check, stale.get("canary"), stale.get("stable"))
        for check in checks
    )


def judged_sides(scope: Scope, checks: Sequence[Check]) -> dict[str, SideScope]:
    """The canary, and stable when some check compares with it: the sides whose freshness
    decides whether their numbers may be judged."""
    sides = {"canary": scope.canary}
    if scope.stable is not None and any(check.compares_with_stable for check in checks):
        sides["stable"] = scope.stable
    return sides


def measure_check(
    provider: MetricProvider,
    scope: Scope,
    check: Check,
    canary_stale: SideMeasurement | None = None,
    stable_stale: SideMeasurement | None = None,
) -> Measurement:
    """Stable is queried only when the verdict needs it (``Check.compares_with_stable``)."""
    side_fn = MEASURES[check.kind]

    def side(which: SideScope, stale: SideMeasurement | None) -> SideMeasurement:
        if stale is not None:
            return stale
        return side_fn(provider, which, scope.range, check)

    canary = side(scope.canary, canary_stale)
    stable = None
    if scope.stable is not None and check.compares_with_stable:
        stable = side(scope.stable, stable_stale)
    return Measurement(check=check.name, canary=canary, stable=stable)


def refused_checks(checks: Sequence[Check], reason: str) -> tuple[Measurement, ...]:
    """Every check inconclusive for a spec problem found before any query (e.g. a Prometheus
    the operator does not allow)."""
    side = SideMeasurement(error=reason, problem=QueryProblem.QUERY_INVALID)
    return tuple(
        Measurement(check=c.name, canary=side, stable=side if c.compares_with_stable else None)
        for c in checks
    )


def _failed(*results: QueryResult) -> SideMeasurement | None:
    failed = [r for r in results if r.error]
    if not failed:
        return None
    # The spec's fault wins: retrying will not fix it, and it is what the user must change.
    problems = {r.problem for r in failed}
    problem = QueryProblem.QUERY_INVALID if QueryProblem.QUERY_INVALID in problems else None
    return SideMeasurement(
        error="; ".join(dict.fromkeys(r.error or "" for r in failed)),
        problem=problem or QueryProblem.PROVIDER_ERROR,
    )


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


SATURATED = frozenset(o.value for o in contract.SATURATION_OUTCOMES)


def error_rate(provider: MetricProvider, side: SideScope, window: str, _: Check) -> SideMeasurement:
    """Server errors among the requests the pods served: requests shed for load or past their
    deadline are the saturation check's, neither errors nor served."""
    counts = provider.query(promql.outcome_counts(side, window))
    if failed := _failed(counts):
        return failed
    by_outcome = counts.by(contract.LABEL_OUTCOME)
    total = sum(n for outcome, n in by_outcome.items() if outcome not in SATURATED)
    errors = by_outcome.get(contract.Outcome.SERVER_ERROR.value, 0.0)
    return SideMeasurement(value=_ratio(errors, total), samples=total, errors=errors)


def saturation(provider: MetricProvider, side: SideScope, window: str, _: Check) -> SideMeasurement:
    """Requests refused for load (shed, timeout) among all the side received; ``errors``
    holds the refused count, so the judge can bound the rate like the error rate's."""
    counts = provider.query(promql.outcome_counts(side, window))
    if failed := _failed(counts):
        return failed
    by_outcome = counts.by(contract.LABEL_OUTCOME)
    total = sum(by_outcome.values())
    refused = sum(n for outcome, n in by_outcome.items() if outcome in SATURATED)
    return SideMeasurement(value=_ratio(refused, total), samples=total, errors=refused)


def latency(
    provider: MetricProvider, side: SideScope, window: str, check: Check
) -> SideMeasurement:
    assert check.latency is not None
    quantile = provider.query(promql.latency_quantile(side, window, check.latency.quantile))
    count = provider.query(promql.latency_count(side, window))
    if failed := _failed(quantile, count):
        return failed
    measured = SideMeasurement(value=quantile.scalar(), samples=count.scalar() or 0.0)
    if check.latency.vs_stable is None:
        return measured
    buckets = provider.query(promql.latency_buckets(side, window))
    if failed := _failed(buckets):
        return failed
    return replace(measured, latency_buckets=cumulative_buckets(buckets.by("le")))


def cumulative_buckets(by_le: Mapping[str, float]) -> tuple[tuple[float, float], ...]:
    """(upper edge, cumulative count) pairs in edge order; a label that is not a number and
    a count that is not finite are left out.

    >>> cumulative_buckets({"+Inf": 8.0, "0.1": 3.0, "x": 1.0, "0.5": 7.0})
    ((0.1, 3.0), (0.5, 7.0), (inf, 8.0))
    """
    pairs = [(float(le), n) for le, n in by_le.items() if _is_bound(le) and math.isfinite(n)]
    return tuple(sorted(pairs))


def quality(
    provider: MetricProvider, side: SideScope, window: str, check: Check
) -> SideMeasurement:
    assert check.quality is not None
    if check.quality.metric == "meanAbsoluteError":
        total = provider.query(promql.abs_error_sum(side, window))
        count = provider.query(promql.abs_error_count(side, window))
        if failed := _failed(total, count):
            return failed
        labelled = count.scalar() or 0.0
        return SideMeasurement(
            value=_ratio(total.scalar() or 0.0, labelled),
            samples=labelled,
            refused=_refused(provider, side, window),
        )
    counts = provider.query(promql.feedback_counts(side, window))
    if failed := _failed(counts):
        return failed
    by_result = counts.by(contract.LABEL_RESULT)
    labelled = sum(by_result.values())
    correct = by_result.get(contract.FeedbackResult.CORRECT.value, 0.0)
    return SideMeasurement(
        value=_ratio(correct, labelled),
        samples=labelled,
        correct=correct,
        refused=_refused(provider, side, window),
    )


def _refused(provider: MetricProvider, side: SideScope, window: str) -> tuple[tuple[str, int], ...]:
    """Refused labels by reason, for the canary's record (they belong to no side: a refused
    label's receipt cannot be trusted to say who predicted)."""
    if side.variant != contract.Variant.CANARY:
        return ()
    refused = provider.query(promql.refused_labels(side, window))
    if refused.error:
        return ()  # only shown, never judged: a failed query costs the record, not the verdict
    counts = refused.by(contract.LABEL_REASON)
    return tuple(sorted((reason, round(n)) for reason, n in counts.items() if round(n) > 0))


def drift(provider: MetricProvider, side: SideScope, window: str, check: Check) -> SideMeasurement:
    """Class counts for classifiers; output-histogram buckets for regressors; or, when the
    check names ``inputs``, the buckets of each of those input features."""
    assert check.drift is not None
    if check.drift.inputs:
        return input_drift(provider, side, window, [f.name for f in check.drift.inputs])
    classes = provider.query(promql.class_counts(side, window))
    if failed := _failed(classes):
        return failed
    counts = classes.by(contract.LABEL_CLASS)
    if not counts:
        buckets = provider.query(promql.value_buckets(side, window))
        if failed := _failed(buckets):
            return failed
        counts = bucket_counts(buckets.by("le"))
    distribution = tuple(sorted(counts.items()))
    return SideMeasurement(samples=sum(counts.values()), distribution=distribution)


def input_drift(
    provider: MetricProvider, side: SideScope, window: str, names: Sequence[str]
) -> SideMeasurement:
    """Per-bucket counts of each named input feature over the window; ``samples`` is the
    fewest values any of them has (a feature the servers do not bucket has none)."""
    result = provider.query(promql.input_buckets(side, window))
    if failed := _failed(result):
        return failed
    cumulative: dict[str, dict[str, float]] = {}
    for sample in result.samples:
        le = sample.labels.get("le", "")
        if math.isfinite(sample.value) and _is_bound(le):
            by_le = cumulative.setdefault(sample.labels.get(contract.LABEL_FEATURE, ""), {})
            by_le[le] = sample.value
    features = tuple(
        (name, tuple(bucket_counts(cumulative.get(name, {})).items())) for name in names
    )
    samples = min(sum(count for _, count in buckets) for _, buckets in features)
    return SideMeasurement(samples=samples, features=features)


def _is_bound(le: str) -> bool:
    try:
        float(le)
    except ValueError:
        return False
    return True


def bucket_counts(cumulative: dict[str, float]) -> dict[str, float]:
    """Per-bucket counts from cumulative ``le`` buckets.

    >>> bucket_counts({"1.0": 3.0, "5.0": 7.0, "+Inf": 8.0})
    {'1.0': 3.0, '5.0': 4.0, '+Inf': 1.0}
    """
    ordered = sorted(cumulative.items(), key=lambda item: float(item[0]))
    result: dict[str, float] = {}
    below = 0.0
    for le, count in ordered:
        result[le] = max(count - below, 0.0)
        below = max(below, count)
    return result


def custom(provider: MetricProvider, side: SideScope, window: str, check: Check) -> SideMeasurement:
    """The user's query, scoped to the object's namespace (or refused: never sent unscoped)."""
    assert check.promql is not None
    rendered = promql.render_custom(check.promql.query, side, window)
    try:
        scoped = scope_to_namespace(rendered, side.namespace_label, side.namespace)
    except UnscopableQueryError as refused:
        return SideMeasurement(error=refused.reason, problem=QueryProblem.QUERY_INVALID)
    result = provider.query(scoped)
    if failed := _failed(result):
        return failed
    if len(result.samples) > 1:
        return SideMeasurement(
            error=f"query returned {len(result.samples)} series, expected 1",
            problem=QueryProblem.QUERY_INVALID,
        )
    value = result.scalar()
    return SideMeasurement(value=value if value is None or math.isfinite(value) else None)


def agreement(
    provider: MetricProvider, side: SideScope, window: str, check: Check
) -> SideMeasurement:
    """Rows compared at the shadow step (``samples``), those that agreed (``correct``), and
    the headline: the agreement rate (``min``) or the mean absolute difference."""
    assert check.agreement is not None
    counts = provider.query(promql.shadow_counts(side, window))
    if failed := _failed(counts):
        return failed
    by_result = counts.by(contract.LABEL_RESULT)
    compared = sum(by_result.values())
    agreed = by_result.get(contract.ShadowResult.AGREE.value, 0.0)
    if check.agreement.min is not None:
        return SideMeasurement(value=_ratio(agreed, compared), samples=compared, correct=agreed)
    total = provider.query(promql.shadow_abs_diff(side, window))
    if failed := _failed(total):
        return failed
    mean = _ratio(total.scalar() or 0.0, compared)
    return SideMeasurement(value=mean, samples=compared, correct=agreed)


MEASURES: Mapping[CheckKind, SideFn] = {
    CheckKind.ERROR_RATE: error_rate,
    CheckKind.LATENCY: latency,
    CheckKind.QUALITY: quality,
    CheckKind.DRIFT: drift,
    CheckKind.PROMQL: custom,
    CheckKind.SATURATION: saturation,
    CheckKind.AGREEMENT: agreement,
}
"""How each kind of check is measured on one side."""
