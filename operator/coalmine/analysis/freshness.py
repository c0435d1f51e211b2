"""The freshness guard: a side whose samples stopped arriving is stale, never a pass.

The query window grows with the step, so once scrapes stop, ``increase()`` over the earlier
good samples keeps answering as if all were well. Before its numbers are trusted, each side
is asked how old its newest request-counter sample is; past ``Scope.max_sample_age`` (or with
no sample at all) every check of that side is inconclusive with a reason that says why.
"""

from __future__ import annotations

from datetime import timedelta

from coalmine.analysis import promql
from coalmine.analysis.provider import MetricProvider
from coalmine.analysis.scope import SideScope
from coalmine.rollout.types import QueryProblem, SideMeasurement

DEFAULT_SCRAPE_INTERVAL = timedelta(seconds=30)
"""prometheus-operator's default ``ServiceMonitor``/``PodMonitor`` interval."""

MISSED_SCRAPES = 3
"""Scrapes a side may miss before it is stale: one late scrape, or one failed scrape, is
jitter; three in a row is a target that stopped."""


def max_sample_age(scrape_interval: timedelta) -> timedelta:
    """The age past which a side is stale, from how often Prometheus scrapes its pods.

    >>> max_sample_age(timedelta(seconds=30))
    datetime.timedelta(seconds=90)
    """
    return scrape_interval * MISSED_SCRAPES


def staleness(
    provider: MetricProvider, side: SideScope, limit: timedelta
) -> SideMeasurement | None:
    """None when the side's samples are fresh; else what the side's checks get instead of
    numbers: stale (``stale``, judged like missing data), or the freshness query's own failure
    (``error``, so a Prometheus outage still counts as a provider error, not as staleness)."""
    result = provider.query(promql.newest_sample_age(side))
    if result.error:
        problem = result.problem or QueryProblem.PROVIDER_ERROR
        return SideMeasurement(error=f"freshness query failed: {result.error}", problem=problem)
    age = result.scalar()
    if age is None:
        return SideMeasurement(
            stale=f"stale: no current sample of the {side.variant}'s request counter"
        )
    if age > limit.total_seconds():
        return SideMeasurement(
            stale=f"stale: last sample {age:.0f}s ago (limit {limit.total_seconds():g}s)"
        )
    return None
