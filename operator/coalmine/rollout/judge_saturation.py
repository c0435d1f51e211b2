"""Verdict of the saturation check: requests the canary's pods refused for load.

Kept in a module of its own, one function, so the statistics can be swapped without touching
the other judges.
"""

from __future__ import annotations

from dataclasses import replace

from coalmine.api.checks import Check
from coalmine.rollout.types import Measurement, SideMeasurement
from coalmine.rollout.verdicts import (
    CheckVerdict,
    InconclusiveError,
    Judging,
    event_count,
    fmt,
    limit_bounds,
    sample_count,
    usable,
)


def _refused(side: SideMeasurement, n: int, which: str) -> int:
    return event_count(side.errors, side.value, n, f"{which} refused count or share")


def judge_saturation(
    check: Check, m: Measurement, judging: Judging, base: CheckVerdict
) -> CheckVerdict:
    """Pass when the canary's refused share is at most ``max``; fail when even its lower bound
    (a confidence sequence, or Wilson's per look) is above ``max`` and stable is not saturated
    too; otherwise inconclusive (too few requests to tell, or both sides flooded: the canary is
    not the one to blame, and a rollout that cannot be judged must not advance either)."""
    spec = check.saturation
    assert spec is not None
    canary = usable(m.canary, "canary")
    n = sample_count(canary, "canary", judging)
    refused = _refused(canary, n, "canary")
    share = refused / n
    verdict = replace(base, value=share, samples=n, threshold=f"<= {fmt(spec.max)}")
    numbers = f"{refused}/{n} refused for load"
    if share <= spec.max:
        return replace(verdict, verdict="pass", reason=f"saturation {fmt(share)} ({numbers})")
    low, _ = limit_bounds(refused, n, spec.confidence, judging, spec.limit_method)
    if low <= spec.max:
        raise InconclusiveError(f"saturation {fmt(share)} above max, but only {numbers}", n)
    why = f"saturation {fmt(share)} > max {fmt(spec.max)} ({numbers})"
    if m.stable is not None and m.stable.error is None and m.stable.samples:
        stable_n = max(1, round(m.stable.samples))
        stable_share = _refused(m.stable, stable_n, "stable") / stable_n
        verdict = replace(verdict, stable_value=stable_share)
        if stable_share > spec.max:
            raise InconclusiveError(f"{why}, but stable too ({fmt(stable_share)}): overload", n)
    return replace(verdict, verdict="fail", reason=why)
