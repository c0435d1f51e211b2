"""A tick's queries asked in one request, where the provider can (``BatchingProvider``).

Each built-in check asks one to three queries per side, and each side its freshness query: a
canary tick sent four requests, each a thread and an HTTP exchange of its own (docs/
benchmarks.md, B9). Which queries a tick will ask is known before any answer: the measure
functions ask the same ones whatever the numbers, and where a query depends on an earlier
answer (a drift check's output buckets, asked when it finds no classes) an empty answer asks
the most. So the checks are first run against a ``Recorder`` that answers nothing, the queries
it heard are sent together, and the checks then run again against the ``Answered`` results.

Custom PromQL checks are left out (the user's query may be a scalar, or not parse, and must
fail alone): a spec with one is measured query by query, as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from coalmine.analysis.freshness import staleness
from coalmine.analysis.measure import judged_sides, measure_check
from coalmine.analysis.provider import MetricProvider, QueryResult
from coalmine.analysis.scope import Scope
from coalmine.api.checks import Check, CheckKind


@runtime_checkable
class BatchingProvider(Protocol):
    def query(self, promql: str) -> QueryResult: ...

    def query_many(self, queries: Sequence[str]) -> list[QueryResult] | None:
        """Each query's result, from one request that ends within the provider's query
        timeout (the tick waits for it without a thread); None when the provider cannot
        answer them together (ask them one by one)."""
        ...


class Recorder:
    """A provider that answers nothing and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def query(self, promql: str) -> QueryResult:
        self.asked.append(promql)
        return QueryResult()


class Answered:
    """Answers from results fetched together; a query not among them (none, when the
    ``Recorder`` heard every one) goes to ``fallback``."""

    def __init__(self, results: Mapping[str, QueryResult], fallback: MetricProvider) -> None:
        self._results, self._fallback = results, fallback

    def query(self, promql: str) -> QueryResult:
        found = self._results.get(promql)
        return found if found is not None else self._fallback.query(promql)


def batchable(checks: Sequence[Check]) -> bool:
    return all(check.kind is not CheckKind.PROMQL for check in checks)


def queries_of(scope: Scope, checks: Sequence[Check]) -> list[str]:
    """Every query measuring ``checks`` may ask (each once), freshness queries first."""
    recorder = Recorder()
    for side in judged_sides(scope, checks).values():
        staleness(recorder, side, scope.max_sample_age)
    for check in checks:
        measure_check(recorder, scope, check)
    return list(dict.fromkeys(recorder.asked))


def prefetched(
    provider: BatchingProvider, scope: Scope, checks: Sequence[Check]
) -> Answered | None:
    """The answers to every query of ``checks``, from one request; None when the provider
    could not answer them together."""
    queries = queries_of(scope, checks)
    results = provider.query_many(queries)
    if results is None:
        return None
    return Answered(dict(zip(queries, results, strict=True)), provider)
