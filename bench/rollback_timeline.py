"""The pure parts of bench B8 (``bench.rollback_speed``): what the clients saw, turned into a
rollback's timeline, and the analytic floor it is divided by (docs/benchmarks.md, B8).

The floor is what no implementation of the same test could beat on the same traffic:

    floor = scrape interval + decide + router propagation

- **scrape interval**: Prometheus holds a request's count at most one scrape after it;
- **decide**: from the first bad response, how long the traffic the clients saw (request rates
  and error rates, canary and stable) takes to give the sequential error-rate test
  (docs/analysis.md, *The sequential comparison*) enough counts to fail the canary: the
  e-value of the canary's share of the errors reaching 1 / (1 - confidence) **and** the
  Wilson lower bound of its rate reaching ``floor``, with at least ``minSamples`` requests a
  side. Counts grow at their observed rates (the expected path, not one random draw);
  :func:`decide_seconds` evaluates the operator's own functions on it;
- **router propagation**: from the client Service's selector naming stable only (what the
  operator writes to take the canary out) to the first request after which no request
  reached the canary, measured on the same run.

Everything else (the look interval, the operator's tick, the Prometheus query, the status and
Service writes) is overhead above the floor, and the ratio measures it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import beta

from coalmine.rollout.stats import share_worse_e_value, wilson_bounds


@dataclass(frozen=True)
class Answer:
    """One client request through the Service: when it was sent and answered (seconds, wall
    clock), its HTTP status (0: no reply) and the version that answered (None when the body
    does not say, as on an error)."""

    sent: float
    received: float
    status: int
    version: str | None
    canary_fault: bool = False
    """The body says it is the canary's injected fault (stable never injects one)."""

    def from_canary(self, canary_version: str) -> bool:
        return self.canary_fault or self.version == canary_version

    @property
    def bad(self) -> bool:
        return self.status != 200


@dataclass(frozen=True)
class Rates:
    """Per second, and error shares, over the canary's time in traffic before the rollback."""

    canary_rps: float
    canary_error_rate: float
    stable_rps: float
    stable_error_rate: float


@dataclass(frozen=True)
class Timeline:
    first_bad: float
    """When the first bad response reached a client."""
    back_on_stable: float
    """The send time of the first request after the last one that reached the canary."""
    rates: Rates
    canary_answers: int
    answers_after: int
    """Requests sent at or after ``back_on_stable`` (all answered by stable)."""

    @property
    def seconds(self) -> float:
        return self.back_on_stable - self.first_bad


def extract_timeline(
    answers: Sequence[Answer], canary_version: str, route_changed: float
) -> Timeline:
    """The rollback's timeline from what the clients saw. ``route_changed``: when the client
    Service's selector was seen naming stable only; the rates are measured from the canary's
    first answer to it (the traffic the test was deciding on)."""
    ordered = sorted(answers, key=lambda a: a.sent)
    canary = [a for a in ordered if a.from_canary(canary_version)]
    bad = [a for a in ordered if a.bad]
    if not canary or not bad:
        raise ValueError("no answer from the canary, or no bad answer: nothing rolled back")
    last_canary = canary[-1].sent
    after = [a for a in ordered if a.sent > last_canary]
    if not after:
        raise ValueError("no request after the canary's last answer: traffic never left it")
    back = after[0].sent
    start = canary[0].sent
    return Timeline(
        first_bad=min(a.received for a in bad),
        back_on_stable=back,
        rates=observed_rates(
            [a for a in ordered if start <= a.sent < route_changed], canary_version
        ),
        canary_answers=len(canary),
        answers_after=len(after),
    )


def observed_rates(answers: Sequence[Answer], canary_version: str) -> Rates:
    if not answers:
        raise ValueError("no answers to measure rates on")
    span = max(a.sent for a in answers) - min(a.sent for a in answers)
    if span <= 0:
        raise ValueError("answers span no time")
    canary = [a for a in answers if a.from_canary(canary_version)]
    stable = [a for a in answers if not a.from_canary(canary_version)]

    def share(side: Sequence[Answer]) -> float:
        return sum(a.bad for a in side) / len(side) if side else 0.0

    return Rates(len(canary) / span, share(canary), len(stable) / span, share(stable))


def decide_seconds(
    rates: Rates,
    *,
    min_samples: int,
    confidence: float = 0.975,
    floor: float = 0.01,
    step: float = 0.01,
    limit: float = 3600.0,
) -> float:
    """The first time (seconds from the first bad response) at which counts growing at
    ``rates`` fail the sequential error-rate test vs stable, exactly as
    ``coalmine.rollout.judge_traffic.judge_error_rate`` decides (``share_worse_e_value`` and
    ``wilson_bounds``, at the check's ``confidence``, ``floor`` and ``minSamples``). Counts
    are whole (floored): a test sees the fourth error, not 3.7 of them.

    >>> decide_seconds(Rates(20, 0.2, 20, 0.0), min_samples=10)  # 4 errors/s against none
    3.0
    >>> decide_seconds(Rates(20, 0.05, 20, 0.0), min_samples=10)  # 1 error/s: 12 needed
    12.0
    """
    threshold = 1.0 / (1.0 - confidence)
    for tick in range(1, int(limit / step) + 1):
        t = tick * step
        n = math.floor(rates.canary_rps * t)
        stable_n = math.floor(rates.stable_rps * t)
        if min(n, stable_n) < min_samples:
            continue
        errors = math.floor(rates.canary_rps * rates.canary_error_rate * t)
        stable_errors = math.floor(rates.stable_rps * rates.stable_error_rate * t)
        worse = share_worse_e_value(errors, n, stable_errors, stable_n) >= threshold
        if worse and wilson_bounds(errors, n, confidence)[0] >= floor:
            return round(t, 6)
    raise ValueError(f"the test does not decide within {limit}s at {rates}")


def realized_decide_seconds(
    answers: Sequence[Answer],
    canary_version: str,
    first_bad: float,
    *,
    min_samples: int,
    confidence: float = 0.975,
    floor: float = 0.01,
) -> float | None:
    """The same test on the very answers of this run, counted from the canary's first
    answer in the order they were received: when it would have failed the canary had every
    count reached Prometheus at once (seconds after ``first_bad``; None if never)."""
    threshold = 1.0 / (1.0 - confidence)
    ordered = sorted(answers, key=lambda a: a.received)
    starts = [a.sent for a in ordered if a.from_canary(canary_version)]
    if not starts:
        return None
    start = min(starts)
    counts = [0, 0, 0, 0]  # canary errors, canary n, stable errors, stable n
    for a in ordered:
        if a.sent < start:
            continue
        side = 0 if a.from_canary(canary_version) else 2
        counts[side] += a.bad
        counts[side + 1] += 1
        errors, n, stable_errors, stable_n = counts
        if min(n, stable_n) < min_samples:
            continue
        worse = share_worse_e_value(errors, n, stable_errors, stable_n) >= threshold
        if worse and wilson_bounds(errors, n, confidence)[0] >= floor:
            return max(0.0, a.received - first_bad)
    return None


def back_to_stable_after(changes: Sequence[tuple[float, bool]], since: float) -> float:
    """From a record of the client Service's selector, ``(seen at, names stable only)`` at
    each change: when it named stable only again, having spanned the canary at or after
    ``since`` (the state carried into ``since`` counts).

    >>> back_to_stable_after([(0.0, True), (5.0, False), (9.0, True)], since=1.0)
    9.0
    """
    carried = [only for t, only in changes if t <= since]
    spanning = [since] if carried and not carried[-1] else []
    spanning += [t for t, only in changes if t > since and not only]
    if not spanning:
        raise ValueError("the Service never spanned the canary")
    back = [t for t, only in changes if t > spanning[0] and only]
    if not back:
        raise ValueError("the Service never went back to stable only")
    return back[0]


def floor_seconds(scrape: float, decide: float, propagation: float) -> float:
    return scrape + decide + propagation


def none_in(runs: int, confidence: float = 0.95) -> tuple[float, float]:
    """Upper ends of the two-sided ``confidence`` interval for a rate seen 0 times in
    ``runs``: (Wilson, as docs/analysis.md's tables use; exact Clopper-Pearson).

    >>> [round(x, 3) for x in none_in(20)]
    [0.161, 0.168]
    """
    tail = (1 - confidence) / 2
    _, wilson = wilson_bounds(0, runs, 1 - tail)
    return wilson, float(beta.ppf(1 - tail, 1, runs))
