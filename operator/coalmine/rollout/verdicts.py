"""What judging a check yields, and the guards every kind's judge runs first.

``coalmine.rollout.judge`` picks the judge of a check's kind; the judges (``judge_traffic``,
``judge_model``) build on the pieces here. The guards run before any comparison, because
``NaN > max`` is False and would let a broken measurement pass: a provider error, a missing or
non-finite number, or too few samples is **inconclusive**, never a pass and never silently a
fail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from coalmine.api.checks import CheckKind, LimitMethod
from coalmine.api.status import Verdict
from coalmine.rollout.stats import confidence_sequence, wilson_bounds
from coalmine.rollout.types import QueryProblem, SideMeasurement


@dataclass(frozen=True)
class CheckVerdict:
    """The judgement of one check at one measurement."""

    name: str
    kind: CheckKind
    verdict: Verdict
    value: float | None = None
    stable_value: float | None = None
    threshold: str = ""
    samples: int | None = None
    reason: str = ""
    refused_labels: tuple[tuple[str, int], ...] = ()
    """quality: labels refused in the window, by reason (shown, not judged)."""
    feature: str | None = None
    """drift on inputs: the feature that drifted most (``value`` is its score)."""
    dry_run: bool = False
    """Recorded, never acted on (the check's ``dryRun``)."""
    on_fail: Literal["rollback", "pause"] = "rollback"
    """What the check's failure limit does (the check's ``onFail``)."""
    e_value: float | None = None
    """Sequential comparisons: the evidence of this step's window alone (not ``carried``)."""
    provider_error: bool = False
    """Inconclusive because a query failed (the provider's fault, not a lack of data)."""


@dataclass(frozen=True)
class Judging:
    """What a check is judged with besides its own settings."""

    min_samples: int
    """``policy.minSamples`` (a check's own ``minSamples`` overrides it in ``judge.judge``)."""
    looks: int = 1
    """Measurements a rollout plans to take (see ``policy.planned_looks``): a comparison with
    stable at confidence c is made at significance (1 - c) / looks on each of them, so the
    whole rollout, not each look, keeps the stated confidence (Bonferroni)."""

    carried: float = 1.0
    """Sequential comparisons: the check's e-value at the end of each earlier step, multiplied
    (see ``policy.carried_evidence``). Each step's window starts afresh at its own traffic
    split, so each step runs its own test; their product is still an e-process."""

    share: float = 0.5
    """The canary's share of traffic this step aims at (its target weight), known before any
    data: where the drift test's mixture is centred (``stats.drift_e_value``)."""

    steps: int = 1
    """Steps of the rollout: each step's window is its own confidence sequence for an absolute
    limit, so each holds at 1 - (1 - c) / steps and the rollout keeps c (``limit_bounds``)."""

    def e_threshold(self, confidence: float) -> float:
        """The e-value at which a sequential comparison fails: 1 / (1 - c) (Ville).

        >>> Judging(min_samples=50).e_threshold(0.975)
        40.0
        """
        return round(1 / (1 - confidence), 9)

    def alpha(self, confidence: float) -> float:
        """Significance of one comparison at one measurement.

        >>> Judging(min_samples=50, looks=4).alpha(0.95)
        0.0125
        """
        return round((1 - confidence) / self.looks, 12)


class InconclusiveError(Exception):
    """Raised by a guard: the measurement cannot support any verdict."""

    def __init__(
        self,
        reason: str,
        samples: int | None = None,
        e_value: float | None = None,
        *,
        provider_error: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.samples = samples
        self.e_value = e_value
        self.provider_error = provider_error


def finite(x: float | None, what: str) -> float:
    """``x`` if it is a real number; NaN, +-Inf and absence are inconclusive."""
    if x is None:
        raise InconclusiveError(f"no {what} (empty result)")
    if not math.isfinite(x):
        raise InconclusiveError(f"{what} is {x} (no data, or a division by zero)")
    return x


def usable(side: SideMeasurement | None, which: Literal["canary", "stable"]) -> SideMeasurement:
    """The side's numbers, unless it is missing or its query failed."""
    if side is None:
        raise InconclusiveError(f"{which} was not measured")
    if side.error is not None:
        # Only the provider's failures run the provider-error clock; a query the spec got
        # wrong (QUERY_INVALID) waits like missing data, under the inconclusive limit.
        failing = side.problem != QueryProblem.QUERY_INVALID
        raise InconclusiveError(f"{which} query failed: {side.error}", provider_error=failing)
    return side


def sample_count(side: SideMeasurement, which: str, judging: Judging) -> int:
    """The side's sample count, at least ``min_samples`` of them."""
    samples = finite(side.samples, f"{which} sample count")
    count = max(0, round(samples))
    if count < judging.min_samples:
        raise InconclusiveError(f"{which} has {count} samples, needs {judging.min_samples}", count)
    return count


def event_count(count: float | None, rate: float | None, n: int, what: str) -> int:
    """How many of ``n`` samples were hits (errors, correct answers): the count when the
    provider measured one, else the rate times ``n``; clamped to ``0..n``.

    >>> event_count(None, 0.25, 40, "error rate")
    10
    >>> event_count(3.0, None, 2, "errors")
    2
    """
    hits = finite(count, what) if count is not None else finite(rate, what) * n
    return min(n, max(0, round(hits)))


def limit_bounds(
    hits: int, n: int, confidence: float, judging: Judging, method: LimitMethod
) -> tuple[float, float]:
    """One-sided bounds (lower, upper) of a rate to hold against an absolute limit: a
    confidence sequence at the confidence split over the steps (``sequential``: each step's
    window is its own sequence, valid at any number of looks), or Wilson's bounds (``perLook``).

    >>> j = Judging(min_samples=1, steps=2)
    >>> [round(b, 3) for b in limit_bounds(5, 100, 0.95, j, "perLook")]
    [0.025, 0.099]
    >>> [round(b, 3) for b in limit_bounds(5, 100, 0.95, j, "sequential")]
    [0.009, 0.143]
    """
    if method == "perLook":
        return wilson_bounds(hits, n, confidence)
    return confidence_sequence(hits, n, 1 - (1 - confidence) / judging.steps)


def fmt(x: float) -> str:
    """Numbers in messages: short, and the same everywhere."""
    return f"{x:.4g}"
