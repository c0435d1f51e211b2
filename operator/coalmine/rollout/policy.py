"""From check verdicts to what the rollout does: consecutive failures, the inconclusive budget,
and when a step may advance.

* A check **fails the rollout** after ``policy.failureLimit`` consecutive failed measurements:
  it rolls back, or with ``onFail: pause`` holds the canary for a person. A check in
  ``dryRun`` is judged and recorded but never acted on, and never holds a step.
  A pass resets its count; an inconclusive measurement leaves it as it was (no data is no news:
  it neither excuses a failure nor adds one), so error, error, ok, error under a limit of 3
  never rolls back.
* Measurements may stay **inconclusive** for want of data for ``policy.inconclusiveLimit``
  (counted from ``analysis.inconclusiveSince``, reset only by a measurement where every check
  passed), and the provider may keep **failing** for ``policy.providerErrorLimit`` (counted
  from ``analysis.providerErrorSince``, reset by any measurement without a provider error);
  past either, ``policy.onInconclusive`` applies. Two clocks, so an outage of Prometheus and
  a canary nobody calls are told apart in status and alerts.
* A step **advances** only on a measurement taken after its pause elapsed in which every check
  passed, each with enough samples (a check without enough samples is inconclusive).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from coalmine.api.canary import CanaryStrategy, Policy
from coalmine.api.status import (
    RECENT_VERDICTS_LIMIT,
    AnalysisStatus,
    CheckStatus,
    Verdict,
)
from coalmine.rollout.judge import judge
from coalmine.rollout.types import Measurement
from coalmine.rollout.verdicts import CheckVerdict, Judging


def planned_looks(canary: CanaryStrategy) -> int:
    """Measurements that count towards promotion in an on-schedule rollout: one per interval
    of each step's pause, at least one per step.

    >>> from datetime import timedelta
    >>> from coalmine.api.canary import Step
    >>> planned_looks(CanaryStrategy(steps=[Step(weight=10), Step(weight=50)]))  # 2 x 60s/30s
    4
    """
    interval = canary.analysis.interval.total_seconds()
    return sum(max(1, math.ceil(s.pause.total_seconds() / interval)) for s in canary.steps)


def analysis_window(
    canary: CanaryStrategy,
    step_started_at: datetime | None,
    now: datetime,
    canary_started_at: datetime | None = None,
) -> timedelta:
    """The range the operator should query: everything since the current step started, and at
    least ``analysis.window``. Evidence then accumulates over a step instead of being capped
    at one window, which is what gives the comparison with stable its power at low traffic
    (the measured rates in docs/analysis.md assume this window).

    Never earlier than this canary started, though: a retried canary of the same revision
    exports the same labels as the attempt that was rolled back, and must start from zero
    counts rather than inherit its predecessor's. (A window that grows over samples that
    stopped arriving is caught by the freshness guard, ``coalmine.analysis.freshness``.)

    >>> from coalmine.api.canary import Step
    >>> c = CanaryStrategy(steps=[Step(weight=10)])
    >>> t0 = datetime(2026, 1, 1)
    >>> analysis_window(c, t0, t0 + timedelta(minutes=5))
    datetime.timedelta(seconds=300)
    >>> analysis_window(c, t0, t0 + timedelta(seconds=10))   # at least the window (default 1m)
    datetime.timedelta(seconds=60)
    >>> analysis_window(c, t0, t0 + timedelta(seconds=10), t0)  # but not before the canary
    datetime.timedelta(seconds=10)
    """
    window = canary.analysis.query_window()
    if step_started_at is not None:
        window = max(window, now - step_started_at)
    if canary_started_at is not None:
        window = min(window, max(now - canary_started_at, timedelta(seconds=1)))
    return window


MEASUREMENT_SLACK = 0.9
"""Share of ``analysis.interval`` after which the next measurement is due.

Ticks come about one interval apart (the engine requeues after it) but the timer and watch
events jitter them, so a tick slightly early must still measure or the step loses a whole
interval. 0.9 is what the operator has always used: observe's gate was the binding one
(the engine only ever saw measurements observe fetched), so keeping it keeps the cadence.
Both callers use this one rule, so observe fetches metrics exactly on the ticks at which
the engine folds them.
"""


def measurement_due(
    analysis: AnalysisStatus | None, step: int, interval: timedelta, now: datetime
) -> bool:
    """Whether a measurement at ``step`` counts now: the first at a step always does, then one
    per analysis interval. Read from status, so a restarted operator keeps the cadence; and
    the operator may reconcile more often (watch events), where every extra look would raise
    the chance of a false failure and make "consecutive failures" mean "within seconds".

    >>> from datetime import timedelta
    >>> t0 = datetime(2026, 1, 1)
    >>> measurement_due(None, 0, timedelta(seconds=30), t0)
    True
    >>> last = AnalysisStatus(measured_at=t0, step=0, weight=10, verdict="pass")
    >>> measurement_due(last, 0, timedelta(seconds=30), t0 + timedelta(seconds=26))
    False
    >>> measurement_due(last, 0, timedelta(seconds=30), t0 + timedelta(seconds=27))  # 0.9 x 30
    True
    >>> measurement_due(last, 1, timedelta(seconds=30), t0)  # a new step measures at once
    True
    """
    if analysis is None or analysis.step != step:
        return True
    return now - analysis.measured_at >= interval * MEASUREMENT_SLACK


def judge_all(
    canary: CanaryStrategy,
    measurements: Sequence[Measurement],
    previous: AnalysisStatus | None = None,
    step: int = 0,
) -> tuple[CheckVerdict, ...]:
    """Every check of the spec judged on its measurement (a missing one is inconclusive),
    with the sequential evidence its earlier steps carried."""
    by_name = {m.check: m for m in measurements}
    judging = Judging(
        min_samples=canary.policy.min_samples,
        looks=planned_looks(canary),
        share=canary.steps[min(step, len(canary.steps) - 1)].weight / 100,
        steps=len(canary.steps),
    )
    before = {c.name: c for c in previous.checks} if previous else {}
    same_step = previous is not None and previous.step == step
    return tuple(
        judge(
            c,
            by_name.get(c.name),
            replace(judging, carried=carried_evidence(before.get(c.name), same_step)),
        )
        for c in canary.checks_at(step)
    )


MAX_CARRIED_EVIDENCE = 1e300


def carried_evidence(previous: CheckStatus | None, same_step: bool) -> float:
    """The e-value a check brings into this look from earlier steps.

    Each step's window starts afresh, at its own traffic split, so each step runs its own
    sequential test, stopped at the step's last look. Multiplying the value each step ended
    with by the running one is still an e-process (a product of test supermartingales, each
    started when the one before stopped), so the whole rollout keeps one alpha instead of
    splitting it over the steps, and a regression seen a little in every step adds up.

    >>> first = CheckStatus(name="e", kind="errorRate", verdict="pass", e_value=3.0)
    >>> carried_evidence(first, same_step=False), carried_evidence(first, same_step=True)
    (3.0, 1.0)
    """
    if previous is None:
        return 1.0
    if same_step:
        return previous.carried_e_value
    # Capped so that status stays finite (far past any threshold: 1 / (1 - 0.9999) = 1e4).
    return min(previous.carried_e_value * (previous.e_value or 1.0), MAX_CARRIED_EVIDENCE)


def overall(verdicts: Sequence[Verdict]) -> Verdict:
    """fail if any check failed, else inconclusive if any was, else pass (also for no checks)."""
    if "fail" in verdicts:
        return "fail"
    return "inconclusive" if "inconclusive" in verdicts else "pass"


def fold_check(
    previous: CheckStatus | None, verdict: CheckVerdict, same_step: bool = True
) -> CheckStatus:
    """The check's record after one more measurement (counters, the capped recent list, and
    the sequential evidence: an inconclusive look keeps the step's last e-value)."""
    e_value = verdict.e_value
    if e_value is None and previous is not None and same_step:
        e_value = previous.e_value
    failures = previous.consecutive_failures if previous else 0
    if verdict.verdict == "fail":
        failures += 1
    elif verdict.verdict == "pass":
        failures = 0
    recent = [*(previous.recent if previous else []), verdict.verdict][-RECENT_VERDICTS_LIMIT:]
    return CheckStatus(
        name=verdict.name,
        kind=verdict.kind,
        verdict=verdict.verdict,
        value=verdict.value,
        stable_value=verdict.stable_value,
        threshold=verdict.threshold,
        samples=verdict.samples,
        reason=verdict.reason[:512],
        refused_labels=dict(verdict.refused_labels),
        feature=verdict.feature,
        e_value=e_value,
        carried_e_value=carried_evidence(previous, same_step),
        dry_run=verdict.dry_run,
        on_fail=verdict.on_fail,
        provider_error=verdict.provider_error,
        consecutive_failures=failures,
        recent=recent,
    )


def fold_analysis(
    previous: AnalysisStatus | None,
    verdicts: Sequence[CheckVerdict],
    step: int,
    weight: int,
    now: datetime,
) -> AnalysisStatus:
    """The analysis record after one more measurement at ``step``."""
    before = {c.name: c for c in previous.checks} if previous else {}
    same_step = previous is not None and previous.step == step
    checks = [fold_check(before.get(v.name), v, same_step) for v in verdicts]
    # A check in dry run is recorded but never acted on: it neither holds nor advances a step,
    # and its missing data or failing queries start no inconclusive or provider-error clock.
    acting = [c for c in checks if not c.dry_run]
    verdict = overall([c.verdict for c in acting])
    since = previous.inconclusive_since if previous else None
    passed_at = previous.passed_at if previous and previous.step == step else None
    no_data = any(c.verdict == "inconclusive" and not c.provider_error for c in acting)
    if verdict == "pass":
        since, passed_at = None, now
    elif verdict == "inconclusive" and no_data and since is None:
        since = now
    errors_since = previous.provider_error_since if previous else None
    if not any(c.provider_error for c in acting):
        errors_since = None
    elif errors_since is None:
        errors_since = now
    return AnalysisStatus(
        measured_at=now,
        step=step,
        weight=weight,
        verdict=verdict,
        checks=checks,
        inconclusive_since=since,
        provider_error_since=errors_since,
        passed_at=passed_at,
    )


CHECK_FAILED = "CheckFailed"
"""The reason analysis holds a canary when a check with ``onFail: pause`` failed."""


class Assessment(StrEnum):
    """What the analysis asks of the rollout."""

    ROLL_BACK = "RollBack"
    PAUSE = "Pause"
    """A check with ``onFail: pause`` reached its failure limit: hold for a person."""
    INCONCLUSIVE_LIMIT = "InconclusiveLimit"
    PROVIDER_ERROR_LIMIT = "ProviderErrorLimit"
    PASSING = "Passing"
    HOLD = "Hold"


@dataclass(frozen=True)
class Judgement:
    assessment: Assessment
    culprit: CheckStatus | None = None
    """The check that failed the rollout, for the rollback record and Event."""


def assess(analysis: AnalysisStatus | None, policy: Policy, now: datetime) -> Judgement:
    """Failure limit first (a failing check outranks everything), then the inconclusive and
    provider-error budgets."""
    if analysis is None:
        return Judgement(Assessment.HOLD)
    failed = [
        c
        for c in analysis.checks
        if c.consecutive_failures >= policy.failure_limit and not c.dry_run
    ]
    for check in failed:  # a rollback outranks a pause
        if check.on_fail == "rollback":
            return Judgement(Assessment.ROLL_BACK, check)
    if failed:
        return Judgement(Assessment.PAUSE, failed[0])
    since = analysis.inconclusive_since
    if since is not None and now - since >= policy.inconclusive_limit:
        return Judgement(Assessment.INCONCLUSIVE_LIMIT)
    failing = analysis.provider_error_since
    if failing is not None and now - failing >= policy.provider_error_limit:
        return Judgement(Assessment.PROVIDER_ERROR_LIMIT)
    if analysis.verdict == "pass":
        return Judgement(Assessment.PASSING)
    return Judgement(Assessment.HOLD)
