"""Verdicts of drift checks: the canary's distribution against stable's, same window.

On predictions, one distribution (class counts, or output buckets). On inputs, one per feature
the check names, each scored like predictions; the worst feature decides and is named in the
verdict. A feature that fails fails the check even while another is still inconclusive (a
drift seen is real); otherwise any inconclusive feature makes the check inconclusive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from coalmine.api.checks import Check, DriftCheck, InputFeature
from coalmine.api.status import Verdict
from coalmine.rollout.stats import chi_square_drift, psi
from coalmine.rollout.types import Distribution, Measurement, SideMeasurement
from coalmine.rollout.verdicts import CheckVerdict, InconclusiveError, Judging, finite, fmt, usable


@dataclass(frozen=True)
class Score:
    """How far apart two aligned count vectors are, by the check's method."""

    value: float
    """PSI, or Cramér's V."""
    failed: bool
    headline: str
    """``psi 0.41`` or ``Cramér's V 0.31``."""
    p: float | None = None
    """chiSquare: the test's p-value."""


def score(
    spec: DriftCheck, canary: Sequence[float], stable: Sequence[float], alpha: float
) -> Score:
    """PSI against ``max``; or Cramér's V against ``max`` and chi-square p against ``alpha``."""
    if spec.method == "psi":
        value = psi(canary, stable)
        return Score(value, value > spec.max, f"psi {fmt(value)}")
    p, v = chi_square_drift(canary, stable)
    return Score(v, v > spec.max and p < alpha, f"Cramér's V {fmt(v)}", p)


def judge_drift(check: Check, m: Measurement, judging: Judging, base: CheckVerdict) -> CheckVerdict:
    """PSI, or chi-square significance together with Cramér's V, canary against stable."""
    spec = check.drift
    assert spec is not None
    canary, stable = usable(m.canary, "canary"), usable(m.stable, "stable")
    if spec.inputs:
        return _judge_inputs(spec, spec.inputs, canary, stable, judging, base)
    counts_c, counts_s = _aligned(canary.distribution, stable.distribution)
    n = _enough(counts_c, counts_s, judging, "predictions")
    alpha = 1 - spec.confidence
    result = score(spec, counts_c, counts_s, alpha)
    verdict: Verdict = "fail" if result.failed else "pass"
    if spec.method == "psi":
        threshold, why = f"psi <= {fmt(spec.max)}", f"PSI {fmt(result.value)}"
    else:
        threshold = f"cramers v <= {fmt(spec.max)} or p >= {alpha:.3g}"
        why = f"Cramér's V {fmt(result.value)}, chi-square p={result.p:.3g}"
    return replace(
        base, verdict=verdict, value=result.value, samples=n, threshold=threshold, reason=why
    )


def _aligned(canary: Distribution, stable: Distribution) -> tuple[list[float], list[float]]:
    """Both distributions over the union of their classes, in a stable order."""
    c, s = dict(canary), dict(stable)
    keys = sorted(set(c) | set(s))
    counts_c = [finite(c.get(k, 0.0), f"canary count of {k!r}") for k in keys]
    counts_s = [finite(s.get(k, 0.0), f"stable count of {k!r}") for k in keys]
    if any(x < 0 for x in counts_c + counts_s):
        raise InconclusiveError("negative prediction count (a counter reset inside the window)")
    return counts_c, counts_s


def _enough(canary: list[float], stable: list[float], judging: Judging, what: str) -> int:
    """The canary's count, when both sides have at least ``min_samples``."""
    n, stable_n = round(sum(canary)), round(sum(stable))
    for which, count in (("canary", n), ("stable", stable_n)):
        if count < judging.min_samples:
            need = judging.min_samples
            raise InconclusiveError(f"{which} has {count} {what}, needs {need}", n)
    return n


def _judge_inputs(
    spec: DriftCheck,
    inputs: Sequence[InputFeature],
    canary: SideMeasurement,
    stable: SideMeasurement,
    judging: Judging,
    base: CheckVerdict,
) -> CheckVerdict:
    # One comparison per feature: Bonferroni keeps chiSquare's confidence for the whole check.
    alpha = (1 - spec.confidence) / len(inputs)
    by_side = (dict(canary.features), dict(stable.features))
    scores: list[tuple[str, Score, int]] = []
    unsure: list[str] = []
    for feature in inputs:
        try:
            counts_c = _feature_counts(feature, by_side[0].get(feature.name, ()), "canary")
            counts_s = _feature_counts(feature, by_side[1].get(feature.name, ()), "stable")
            n = _enough(counts_c, counts_s, judging, "values")
            scores.append((feature.name, score(spec, counts_c, counts_s, alpha), n))
        except InconclusiveError as why:
            unsure.append(f"feature {feature.name}: {why.reason}")
    limit = f"psi <= {fmt(spec.max)}" if spec.method == "psi" else f"cramers v <= {fmt(spec.max)}"
    if spec.method != "psi":
        limit += f" or p >= {alpha:.3g}"
    judged = replace(base, threshold=f"{limit}, each feature")
    failed = [entry for entry in scores if entry[1].failed]
    if failed:
        return _worst(judged, "fail", failed, spec.max)
    if unsure:
        samples = min((n for *_, n in scores), default=None)
        raise InconclusiveError("input drift: " + "; ".join(unsure), samples)
    return _worst(judged, "pass", scores, spec.max)


def _worst(
    judged: CheckVerdict, verdict: Verdict, scores: list[tuple[str, Score, int]], limit: float
) -> CheckVerdict:
    """The verdict named after the feature that drifted most."""
    name, worst, _ = max(scores, key=lambda entry: entry[1].value)
    p = "" if worst.p is None else f", p={worst.p:.3g}"
    if verdict == "fail":
        reason = f"input drift: feature {name} {worst.headline} > {fmt(limit)}{p}"
    else:
        reason = f"input drift: worst of {len(scores)} features is {name}, {worst.headline}{p}"
    samples = min(n for *_, n in scores)
    return replace(
        judged, verdict=verdict, value=worst.value, samples=samples, reason=reason, feature=name
    )


def _feature_counts(feature: InputFeature, buckets: Distribution, which: str) -> list[float]:
    """Counts in the order of the feature's buckets, when the side's buckets are exactly the
    check's edges (and +Inf): a pod still bucketing with other edges is not comparable."""
    if not buckets:
        raise InconclusiveError(f"no series on {which} (does its server bucket this feature?)")
    by_bound = {float(le): count for le, count in buckets}
    wanted = [*feature.edges, math.inf]
    if sorted(by_bound) != wanted:
        raise InconclusiveError(
            f"{which} buckets {sorted(by_bound)} are not the check's edges (a pod still runs"
            " with other --input-features)"
        )
    counts = [
        finite(by_bound[bound], f"{which} count of feature {feature.name}") for bound in wanted
    ]
    if any(x < 0 for x in counts):
        raise InconclusiveError(f"negative {which} count (a counter reset inside the window)")
    return counts
