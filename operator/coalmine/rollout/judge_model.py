"""Verdicts of the quality check: accuracy or mean absolute error from delayed labels."""

from __future__ import annotations

from dataclasses import replace

from coalmine.api.checks import Check, QualityCheck
from coalmine.rollout.stats import accuracy_worse_p, share_worse_e_value
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


def judge_quality(
    check: Check, m: Measurement, judging: Judging, base: CheckVerdict
) -> CheckVerdict:
    """Accuracy with Wilson bounds, or mean absolute error, absolute and against stable."""
    spec = check.quality
    assert spec is not None
    labels = replace(judging, min_samples=check.min_samples or spec.min_labels)
    if spec.metric == "accuracy":
        return _accuracy(spec, m, labels, base)
    return _mae(spec, m, labels, base)


def _correct(side: SideMeasurement, n: int, which: str) -> int:
    return event_count(side.correct, side.value, n, f"{which} correct count or accuracy")


def _accuracy(
    spec: QualityCheck, m: Measurement, judging: Judging, base: CheckVerdict
) -> CheckVerdict:
    canary = usable(m.canary, "canary")
    n = sample_count(canary, "canary labels", judging)
    correct = _correct(canary, n, "canary")
    accuracy = correct / n
    bound = "wilson bound" if spec.limit_method == "perLook" else "lower bound"
    limits = [] if spec.min is None else [f"{bound} >= {fmt(spec.min)}"]
    if spec.vs_stable is not None:
        limits.append(f"at most {fmt(spec.vs_stable.max_degradation)} below stable")
    verdict = replace(base, value=accuracy, samples=n, threshold="; ".join(limits))
    if spec.min is not None:
        low, high = limit_bounds(correct, n, spec.confidence, judging, spec.limit_method)
        bounds = f"accuracy {fmt(accuracy)} ({correct}/{n}), bounds [{fmt(low)}, {fmt(high)}]"
        if high < spec.min:
            return replace(verdict, verdict="fail", reason=f"{bounds} below {fmt(spec.min)}")
        if low < spec.min:
            raise InconclusiveError(f"{bounds}: cannot tell yet against {fmt(spec.min)}", n)
    if spec.vs_stable is None:
        return replace(verdict, verdict="pass", reason=f"accuracy {fmt(accuracy)} ({correct}/{n})")
    stable = usable(m.stable, "stable")
    stable_n = sample_count(stable, "stable labels", judging)
    stable_correct = _correct(stable, stable_n, "stable")
    stable_accuracy = stable_correct / stable_n
    verdict = replace(verdict, stable_value=stable_accuracy)
    drop = stable_accuracy - accuracy
    numbers = f"canary {correct}/{n} vs stable {stable_correct}/{stable_n}"
    if drop <= spec.vs_stable.max_degradation:
        return replace(verdict, verdict="pass", reason=f"{numbers}: drop {fmt(drop)}")
    worse, evidence, e = _less_accurate(spec, (correct, n, stable_correct, stable_n), judging)
    verdict = replace(verdict, e_value=e)
    if worse:
        return replace(verdict, verdict="fail", reason=f"{numbers}: drop {fmt(drop)}, {evidence}")
    why = f"{numbers}: drop {fmt(drop)} not yet significant ({evidence})"
    raise InconclusiveError(why, n, e)


def _less_accurate(
    spec: QualityCheck, counts: tuple[int, int, int, int], judging: Judging
) -> tuple[bool, str, float | None]:
    """Whether the canary is significantly less accurate than stable: its wrong answers
    compared with stable's like errors (the sequential e-value times the earlier steps', and
    this step's alone), or Fisher's p."""
    assert spec.vs_stable is not None
    correct, n, stable_correct, stable_n = counts
    if spec.vs_stable.method == "sequential":
        e = share_worse_e_value(n - correct, n, stable_n - stable_correct, stable_n)
        evidence = e * judging.carried
        confidence = spec.vs_stable.confidence
        return evidence >= judging.e_threshold(confidence), f"e={evidence:.3g}", e
    p = accuracy_worse_p(correct, n, stable_correct, stable_n)
    return p < 1 - spec.vs_stable.confidence, f"p={p:.3g}", None


def _mae(spec: QualityCheck, m: Measurement, judging: Judging, base: CheckVerdict) -> CheckVerdict:
    canary = usable(m.canary, "canary")
    n = sample_count(canary, "canary labels", judging)
    mae = finite(canary.value, "canary mean absolute error")
    limits = [] if spec.max is None else [f"<= {fmt(spec.max)}"]
    if spec.vs_stable is not None:
        limits.append(f"at most {fmt(spec.vs_stable.max_degradation)} above stable")
    verdict = replace(base, value=mae, samples=n, threshold="; ".join(limits))
    if spec.max is not None and mae > spec.max:
        return replace(verdict, verdict="fail", reason=f"MAE {fmt(mae)} > {fmt(spec.max)}")
    if spec.vs_stable is None:
        return replace(verdict, verdict="pass", reason=f"MAE {fmt(mae)} over {n} labels")
    stable = usable(m.stable, "stable")
    sample_count(stable, "stable labels", judging)
    stable_mae = finite(stable.value, "stable mean absolute error")
    verdict = replace(verdict, stable_value=stable_mae)
    why = f"MAE canary {fmt(mae)} vs stable {fmt(stable_mae)}"
    failed = mae - stable_mae > spec.vs_stable.max_degradation
    return replace(verdict, verdict="fail" if failed else "pass", reason=why)
