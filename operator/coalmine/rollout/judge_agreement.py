"""Verdicts of the agreement check: canary vs stable on the same (mirrored) requests.

Classifiers: of ``n`` compared rows, ``agreed`` gave the same class on both sides. Two
one-sided sequential tests, both the beta-mixture e-process of ``stats``, so the check may look
at every measurement without inflating its error: it fails when the evidence that agreement
is below ``min`` reaches 1 / (1 - confidence), and passes when the evidence that it is above
``min`` does. In between it is inconclusive, and an inconclusive shadow step never advances.

Regressors: the mean absolute difference of the two answers over the compared rows, against
``maxMeanAbsDiff`` (like the quality check's MAE, without a bound: the rows are not a sample
of anything but this window's traffic).
"""

from __future__ import annotations

from dataclasses import replace

from coalmine.api.checks import AgreementCheck, Check
from coalmine.rollout.stats import binomial_worse_e_value, wilson_bounds
from coalmine.rollout.types import Measurement
from coalmine.rollout.verdicts import (
    CheckVerdict,
    InconclusiveError,
    Judging,
    event_count,
    finite,
    fmt,
    sample_count,
    usable,
)


def judge_agreement(
    check: Check, m: Measurement, judging: Judging, base: CheckVerdict
) -> CheckVerdict:
    spec = check.agreement
    assert spec is not None
    canary = usable(m.canary, "canary")
    n = sample_count(canary, "compared requests", judging)
    if spec.min is not None:
        agreed = event_count(canary.correct, canary.value, n, "agreeing rows")
        return agreement_verdict(spec, agreed, n, base)
    mean = finite(canary.value, "mean absolute difference")
    assert spec.max_mean_abs_diff is not None
    limit = spec.max_mean_abs_diff
    verdict = replace(base, value=mean, samples=n, threshold=f"<= {fmt(limit)}")
    why = f"mean |canary - stable| {fmt(mean)} over {n} compared rows"
    if mean > limit:
        return replace(verdict, verdict="fail", reason=f"{why} > {fmt(limit)}")
    return replace(verdict, verdict="pass", reason=why)


def agreement_verdict(
    spec: AgreementCheck, agreed: int, n: int, base: CheckVerdict
) -> CheckVerdict:
    """Pass, fail or inconclusive for ``agreed`` of ``n`` compared rows against ``spec.min``."""
    assert spec.min is not None
    threshold = round(1 / (1 - spec.confidence), 9)
    below = binomial_worse_e_value(n - agreed, n, 1 - spec.min)  # disagreeing above 1 - min
    above = binomial_worse_e_value(agreed, n, spec.min)  # agreeing above min
    low, high = wilson_bounds(agreed, n, spec.confidence)
    numbers = (
        f"agreement {fmt(agreed / n)} ({agreed}/{n} compared), bounds [{fmt(low)}, {fmt(high)}]"
    )
    verdict = replace(
        base, value=agreed / n, samples=n, threshold=f">= {fmt(spec.min)}", e_value=below
    )
    if below >= threshold:
        return replace(verdict, verdict="fail", reason=f"{numbers}: below {fmt(spec.min)}")
    if above >= threshold:
        return replace(verdict, verdict="pass", reason=f"{numbers}: above {fmt(spec.min)}")
    raise InconclusiveError(f"{numbers}: cannot tell yet against {fmt(spec.min)}", n, below)
