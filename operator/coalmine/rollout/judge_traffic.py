"""Verdicts of the request-level checks: error rate, latency quantile, custom PromQL."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from coalmine.api.checks import Check, ErrorRateCheck, LatencyCheck
from coalmine.rollout.stats import error_rate_worse_p, share_worse_e_value, wilson_bounds
from coalmine.rollout.types import Measurement, SideMeasurement
from coalmine.rollout.verdicts import (
    CheckVerdict,
    InconclusiveError,
    Judging,
    event_count,
    finite,
    fmt,
    limit_bounds,
    sample_count,
    usable,
)

# The absolute error-rate ceiling is judged with this one-sided confidence: fail when even the
# optimistic (lower) bound is above the ceiling, pass when the point estimate is at or below it,
# inconclusive in between (3 errors in 50 requests is 6%, but could well be a 2% canary). The
# bound is a confidence sequence (``limitMethod: sequential``), so looking often is safe.
ABSOLUTE_CONFIDENCE = 0.95


def _errors(side: SideMeasurement, samples: int, which: str) -> int:
    return event_count(side.errors, side.value, samples, f"{which} error count or rate")


def judge_error_rate(
    check: Check, m: Measurement, judging: Judging, base: CheckVerdict
) -> CheckVerdict:
    """Absolute ceiling (with a confidence sequence, or a Wilson bound per look) and the
    comparison with stable (the sequential test, or Fisher's per look)."""
    spec = check.error_rate
    assert spec is not None
    canary = usable(m.canary, "canary")
    n = sample_count(canary, "canary", judging)
    errors = _errors(canary, n, "canary")
    rate = errors / n
    verdict = replace(base, value=rate, samples=n, threshold=_error_threshold(spec, judging))
    if spec.max is not None and rate > spec.max:
        low, _ = limit_bounds(errors, n, ABSOLUTE_CONFIDENCE, judging, spec.limit_method)
        numbers = f"({errors}/{n}, lower bound {fmt(low)})"
        if low > spec.max:
            why = f"error rate {fmt(rate)} > max {fmt(spec.max)} {numbers}"
            return replace(verdict, verdict="fail", reason=why)
        raise InconclusiveError(f"error rate {fmt(rate)} above max, but only {numbers}", n)
    if spec.vs_stable is None:
        return replace(verdict, verdict="pass", reason=f"error rate {fmt(rate)} ({errors}/{n})")
    stable = usable(m.stable, "stable")
    stable_n = sample_count(stable, "stable", judging)
    stable_errors = _errors(stable, stable_n, "stable")
    verdict = replace(verdict, stable_value=stable_errors / stable_n)
    worse, numbers, e = _worse_than_stable(spec, (errors, n, stable_errors, stable_n), judging)
    verdict = replace(verdict, e_value=e)
    # Both halves hold with the stated confidence: worse than stable and above the floor (the
    # Wilson lower bound, not the point estimate, so a canary whose true rate sits at the
    # floor is not failed by its noise).
    floor_low, _ = wilson_bounds(errors, n, spec.vs_stable.confidence)
    if floor_low >= spec.vs_stable.floor and worse:
        return replace(verdict, verdict="fail", reason=f"worse than stable: {numbers}")
    return replace(verdict, verdict="pass", reason=f"not worse than stable: {numbers}")


def _worse_than_stable(
    spec: ErrorRateCheck, counts: tuple[int, int, int, int], judging: Judging
) -> tuple[bool, str, float | None]:
    """Whether the canary's errors are significantly more frequent than stable's, the numbers
    that say so, and this step's e-value: the sequential e-value times the earlier steps'
    (``judging.carried``), or Fisher's p at the per-look significance."""
    assert spec.vs_stable is not None
    errors, n, stable_errors, stable_n = counts
    numbers = f"canary {errors}/{n} vs stable {stable_errors}/{stable_n}"
    confidence = spec.vs_stable.confidence
    if spec.vs_stable.method == "sequential":
        e = share_worse_e_value(errors, n, stable_errors, stable_n)
        evidence = e * judging.carried
        return evidence >= judging.e_threshold(confidence), f"{numbers}, e={evidence:.3g}", e
    p = error_rate_worse_p(errors, n, stable_errors, stable_n)
    return p < judging.alpha(confidence), f"{numbers}, p={p:.3g}", None


def _error_threshold(spec: ErrorRateCheck, judging: Judging) -> str:
    parts = [] if spec.max is None else [f"<= {fmt(spec.max)}"]
    if spec.vs_stable is not None:
        confidence = spec.vs_stable.confidence
        test = (
            f"e < {judging.e_threshold(confidence):.3g}"
            if spec.vs_stable.method == "sequential"
            else f"p >= {judging.alpha(confidence):.3g}"
        )
        parts.append(f"vs stable {test} or rate bound < {fmt(spec.vs_stable.floor)}")
    return "; ".join(parts)


def judge_latency(
    check: Check, m: Measurement, judging: Judging, base: CheckVerdict
) -> CheckVerdict:
    """The canary's quantile against ``maxSeconds``, and the sequential test against
    ``maxRatio`` x stable's (``_slower_than_stable``)."""
    spec = check.latency
    assert spec is not None
    canary = usable(m.canary, "canary")
    n = sample_count(canary, "canary", judging)
    value = finite(canary.value, f"canary p{spec.quantile * 100:g}")
    limits = [] if spec.max_seconds is None else [f"<= {fmt(spec.max_seconds)}s"]
    if spec.vs_stable is not None:
        e_limit = judging.e_threshold(spec.vs_stable.confidence)
        limits.append(f"ratio <= {fmt(spec.vs_stable.max_ratio)} (e < {e_limit:.3g})")
    verdict = replace(base, value=value, samples=n, threshold="; ".join(limits))
    if spec.max_seconds is not None and value > spec.max_seconds:
        why = f"p{spec.quantile * 100:g} {fmt(value)}s > {fmt(spec.max_seconds)}s"
        return replace(verdict, verdict="fail", reason=why)
    if spec.vs_stable is None:
        return replace(verdict, verdict="pass", reason=f"p{spec.quantile * 100:g} {fmt(value)}s")
    stable = usable(m.stable, "stable")
    sample_count(stable, "stable", judging)
    verdict = replace(verdict, stable_value=stable.value)
    slow, why, e = _slower_than_stable(spec, canary, stable, judging)
    return replace(verdict, verdict="fail" if slow else "pass", reason=why, e_value=e)


def _slower_than_stable(
    spec: LatencyCheck, canary: SideMeasurement, stable: SideMeasurement, judging: Judging
) -> tuple[bool, str, float]:
    """Whether the canary's latency tail is beyond ``maxRatio`` x stable's, the numbers, and
    this step's e-value (docs/analysis.md, *Latency vs stable, sequentially*).

    ``slow`` is the smallest bucket edge at or above ``maxRatio`` x the upper edge of the
    bucket holding stable's quantile; ``reference`` the largest edge at or below
    ``slow / maxRatio``. A canary no slower than ``maxRatio`` x stable has no larger a share
    of requests above ``slow`` than stable has above ``reference``: the two counts are
    compared like errors (``share_worse_e_value``), and carried across steps the same way.
    """
    assert spec.vs_stable is not None
    ratio, q = spec.vs_stable.max_ratio, spec.quantile
    if not canary.latency_buckets:
        raise InconclusiveError("canary latency histogram missing", round(canary.samples or 0))
    stable_edge = quantile_edge(stable.latency_buckets, q)
    if stable_edge is None:  # no requests, or a quantile beyond the last finite edge
        raise InconclusiveError("stable latency quantile not within the histogram's edges")
    tolerance = 1 + 1e-9  # edges are decimal floats: 1.5 x 0.01 must match the 0.015 edge
    edges = [edge for edge, _ in canary.latency_buckets]
    slow = next((edge for edge in edges if edge * tolerance >= ratio * stable_edge), math.inf)
    stable_edges = [edge for edge, _ in stable.latency_buckets]
    reference = max(edge for edge in stable_edges if edge <= slow / ratio * tolerance)
    n, slower = requests_above(canary.latency_buckets, slow)
    stable_n, stable_slower = requests_above(stable.latency_buckets, reference)
    e = share_worse_e_value(slower, n, stable_slower, stable_n)
    evidence = e * judging.carried
    worse = evidence >= judging.e_threshold(spec.vs_stable.confidence)
    why = (
        f"canary {slower}/{n} > {fmt(slow)}s vs stable {stable_slower}/{stable_n} "
        f"> {fmt(reference)}s (stable p{q * 100:g} <= {fmt(stable_edge)}s, "
        f"ratio {fmt(ratio)}), e={evidence:.3g}"
    )
    return worse, why, e


def quantile_edge(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """Upper edge of the bucket holding the q-quantile of a cumulative histogram (None when
    empty or when the quantile is in the +Inf bucket).

    >>> quantile_edge(((0.01, 50.0), (0.05, 99.0), (0.1, 100.0), (math.inf, 100.0)), 0.99)
    0.05
    """
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    edge = next(edge for edge, below in buckets if below >= q * total)
    return edge if math.isfinite(edge) else None


def requests_above(buckets: Sequence[tuple[float, float]], boundary: float) -> tuple[int, int]:
    """(requests, requests above ``boundary``, an edge or ``inf``) of a cumulative histogram.

    >>> requests_above(((0.01, 50.0), (0.05, 99.0), (math.inf, 100.0)), 0.01)
    (100, 50)
    """
    total = round(buckets[-1][1]) if buckets else 0
    below = max((count for edge, count in buckets if edge <= boundary), default=0.0)
    return total, max(total - round(below), 0)


def judge_promql(
    check: Check, m: Measurement, judging: Judging, base: CheckVerdict
) -> CheckVerdict:
    """A custom number against min, max and the ratio to stable's.

    A custom query carries no sample count unless the operator supplies one; when it does,
    ``minSamples`` applies like everywhere else.
    """
    spec = check.promql
    assert spec is not None
    canary = usable(m.canary, "canary")
    n = sample_count(canary, "canary", judging) if canary.samples is not None else None
    value = finite(canary.value, "canary value")
    limits = [f"{name} {op} {fmt(x)}" for name, op, x in _promql_limits(check) if x is not None]
    verdict = replace(base, value=value, samples=n, threshold="; ".join(limits))
    if spec.min is not None and value < spec.min:
        return replace(verdict, verdict="fail", reason=f"{fmt(value)} < min {fmt(spec.min)}")
    if spec.max is not None and value > spec.max:
        return replace(verdict, verdict="fail", reason=f"{fmt(value)} > max {fmt(spec.max)}")
    if spec.max_ratio is None:
        return replace(verdict, verdict="pass", reason=f"value {fmt(value)}")
    stable_value = finite(usable(m.stable, "stable").value, "stable value")
    if stable_value <= 0:
        raise InconclusiveError(f"stable value is {stable_value}: no ratio", n)
    ratio = value / stable_value
    verdict = replace(verdict, stable_value=stable_value)
    why = f"canary {fmt(value)} / stable {fmt(stable_value)} = {fmt(ratio)}"
    return replace(verdict, verdict="fail" if ratio > spec.max_ratio else "pass", reason=why)


def _promql_limits(check: Check) -> list[tuple[str, str, float | None]]:
    spec = check.promql
    assert spec is not None
    return [("value", ">=", spec.min), ("value", "<=", spec.max), ("ratio", "<=", spec.max_ratio)]
