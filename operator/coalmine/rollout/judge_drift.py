"""Verdicts of drift checks: the canary's distribution against stable's, same window.

By default (``method: sequential``) a drift fails when it is both certain and large: the
mixture likelihood ratio of the counts (``stats.drift_e_value``), times what the earlier steps
carried, reaches 1 / alpha, and the PSI less what noise alone gives (``stats.psi_noise``) is
above ``max``. Large but not yet certain is inconclusive (the step waits); certain but small
passes.

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
from coalmine.rollout.stats import chi_square_drift, drift_e_value, psi, psi_noise
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
    e: float | None = None
    """sequential: this step's e-value (not multiplied by the earlier steps')."""
    carried: float = 1.0
    """sequential: what the earlier steps carried (the evidence is ``e * carried``)."""
    unsure: bool = False
    """sequential: PSI above ``max`` but the difference not yet significant."""

    @property
    def evidence(self) -> str:
        """``, p=0.001`` or ``, e=3.1`` (the evidence, earlier steps' included) for reasons;
        empty for plain PSI."""
        if self.p is not None:
            return f", p={self.p:.3g}"
        return "" if self.e is None else f", e={self.e * self.carried:.3g}"


def score(
    spec: DriftCheck,
    canary: Sequence[float],
    stable: Sequence[float],
    alpha: float,
    judging: Judging | None = None,
) -> Score:
    """PSI against ``max``; or Cramér's V against ``max`` and chi-square p against ``alpha``;
    or (sequential) PSI against ``max`` and the e-value, times the earlier steps', against
    1 / ``alpha``."""
    if spec.method == "chiSquare":
        p, v = chi_square_drift(canary, stable)
        return Score(v, v > spec.max and p < alpha, f"Cramér's V {fmt(v)}", p)
    value = psi(canary, stable)
    if spec.method == "psi":
        return Score(value, value > spec.max, f"psi {fmt(value)}")
    judging = judging or Judging(min_samples=0)
    e = drift_e_value(canary, stable, judging.share)
    evidence = e * judging.carried
    beyond = value - psi_noise(canary, stable)
    large, significant = beyond > spec.max, evidence * alpha >= 1 - 1e-9
    headline = f"psi {fmt(value)} ({fmt(beyond)} beyond noise)"
    unsure = large and not significant
    return Score(
        value, large and significant, headline, e=e, carried=judging.carried, unsure=unsure
    )


def judge_drift(check: Check, m: Measurement, judging: Judging, base: CheckVerdict) -> CheckVerdict:
    """PSI; or chi-square significance together with Cramér's V; or (sequential, the default)
    the mixture likelihood ratio together with PSI, canary against stable."""
    spec = check.drift
    assert spec is not None
    canary, stable = usable(m.canary, "canary"), usable(m.stable, "stable")
    if spec.inputs:
        return _judge_inputs(spec, spec.inputs, canary, stable, judging, base)
    counts_c, counts_s = _aligned(canary.distribution, stable.distribution)
    n = _enough(counts_c, counts_s, judging, "predictions")
    alpha = 1 - spec.confidence
    result = score(spec, counts_c, counts_s, alpha, judging)
    e = result.e
    threshold = _limits(spec, alpha)
    why = f"PSI {result.headline.removeprefix('psi ')}{result.evidence}"
    if spec.method == "chiSquare":
        why = f"Cramér's V {fmt(result.value)}, chi-square p={result.p:.3g}"
    if result.unsure:
        raise InconclusiveError(f"{why}: above {fmt(spec.max)}, not yet significant", n, e)
    verdict: Verdict = "fail" if result.failed else "pass"
    return replace(
        base,
        verdict=verdict,
        value=result.value,
        samples=n,
        threshold=threshold,
        reason=why,
        e_value=e,
    )


def _limits(spec: DriftCheck, alpha: float) -> str:
    """``psi <= 0.2``, ``psi <= 0.2 or e < 100``, ``cramers v <= 0.1 or p >= 0.01``."""
    if spec.method == "psi":
        return f"psi <= {fmt(spec.max)}"
    if spec.method == "sequential":
        return f"psi beyond noise <= {fmt(spec.max)} or e < {1 / alpha:.3g}"
    return f"cramers v <= {fmt(spec.max)} or p >= {alpha:.3g}"


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
    # One comparison per feature at alpha / k (Bonferroni; for e-values: the mean of the
    # features' e-values is an e-value, and a feature's own e / k is below it, so each feature
    # is tested at k / alpha and the check's carried evidence is their mean).
    alpha = (1 - spec.confidence) / len(inputs)
    by_side = (dict(canary.features), dict(stable.features))
    scores: list[tuple[str, Score, int]] = []
    unsure: list[str] = []
    e_values: list[float] = []
    for feature in inputs:
        try:
            counts_c = _feature_counts(feature, by_side[0].get(feature.name, ()), "canary")
            counts_s = _feature_counts(feature, by_side[1].get(feature.name, ()), "stable")
            n = _enough(counts_c, counts_s, judging, "values")
            result = score(spec, counts_c, counts_s, alpha, judging)
            if result.e is not None:
                e_values.append(result.e)
            if result.unsure:
                unsure.append(f"feature {feature.name}: {result.headline}{result.evidence}")
                unsure[-1] += f" above {fmt(spec.max)}, not yet significant"
                continue
            scores.append((feature.name, result, n))
        except InconclusiveError as why:
            unsure.append(f"feature {feature.name}: {why.reason}")
    # Features not scored this look count as e = 1 (no evidence) in the mean.
    e = (sum(e_values) + len(inputs) - len(e_values)) / len(inputs) if e_values else None
    judged = replace(base, threshold=f"{_limits(spec, alpha)}, each feature", e_value=e)
    failed = [entry for entry in scores if entry[1].failed]
    if failed:
        return _worst(judged, "fail", failed, spec.max)
    if unsure:
        samples = min((n for *_, n in scores), default=None)
        raise InconclusiveError("input drift: " + "; ".join(unsure), samples, e)
    return _worst(judged, "pass", scores, spec.max)


def _worst(
    judged: CheckVerdict, verdict: Verdict, scores: list[tuple[str, Score, int]], limit: float
) -> CheckVerdict:
    """The verdict named after the feature that drifted most."""
    name, worst, _ = max(scores, key=lambda entry: entry[1].value)
    evidence = worst.evidence
    if verdict == "fail":
        reason = f"input drift: feature {name} {worst.headline} > {fmt(limit)}{evidence}"
    else:
        reason = f"input drift: worst of {len(scores)} features is {name}, {worst.headline}"
        reason += evidence
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
