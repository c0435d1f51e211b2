"""One check, one measurement -> pass, fail or inconclusive, with the numbers that decided it.

``JUDGES`` holds one judge per ``CheckKind`` (a test checks that every kind has one). This
module sits above the judges and ``verdicts``, which they build on, so no import is cyclic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from coalmine.api.checks import Check, CheckKind
from coalmine.rollout.judge_agreement import judge_agreement
from coalmine.rollout.judge_drift import judge_drift
from coalmine.rollout.judge_model import judge_quality
from coalmine.rollout.judge_saturation import judge_saturation
from coalmine.rollout.judge_traffic import judge_error_rate, judge_latency, judge_promql
from coalmine.rollout.types import Measurement
from coalmine.rollout.verdicts import CheckVerdict, InconclusiveError, Judging

JudgeFn = Callable[[Check, Measurement, Judging, CheckVerdict], CheckVerdict]
"""A kind's judge: may raise ``InconclusiveError`` from the guards instead of returning."""

JUDGES: Mapping[CheckKind, JudgeFn] = {
    CheckKind.ERROR_RATE: judge_error_rate,
    CheckKind.LATENCY: judge_latency,
    CheckKind.QUALITY: judge_quality,
    CheckKind.DRIFT: judge_drift,
    CheckKind.PROMQL: judge_promql,
    CheckKind.SATURATION: judge_saturation,
    CheckKind.AGREEMENT: judge_agreement,
}


def _judge(check: Check, measurement: Measurement | None, judging: Judging) -> CheckVerdict:
    base = CheckVerdict(name=check.name, kind=check.kind, verdict="inconclusive")
    if check.min_samples is not None:
        judging = replace(judging, min_samples=check.min_samples)
    if measurement is None:
        return _inconclusive(base, InconclusiveError("not measured"))
    if stale := _stale(measurement):
        return _inconclusive(base, InconclusiveError(stale))
    try:
        verdict = JUDGES[check.kind](check, measurement, judging, base)
    except InconclusiveError as why:
        verdict = _inconclusive(base, why)
    return replace(verdict, refused_labels=measurement.canary.refused)


def judge(check: Check, measurement: Measurement | None, judging: Judging) -> CheckVerdict:
    """The verdict of ``check`` on ``measurement`` (None: the operator did not measure it),
    with what acting on it means (``dryRun``, ``onFail``)."""
    verdict = _judge(check, measurement, judging)
    return replace(verdict, dry_run=check.dry_run, on_fail=check.on_fail)


def _stale(measurement: Measurement) -> str | None:
    """Checked before any judge, so no judge can pass a side whose samples stopped."""
    for which, side in (("canary", measurement.canary), ("stable", measurement.stable)):
        if side is not None and side.stale:
            return f"{which} {side.stale}"
    return None


def _inconclusive(base: CheckVerdict, why: InconclusiveError) -> CheckVerdict:
    return CheckVerdict(
        name=base.name,
        kind=base.kind,
        verdict="inconclusive",
        samples=why.samples,
        reason=why.reason,
        e_value=why.e_value,
        provider_error=why.provider_error,
    )
