"""``Gathering``: ticks that ask one Prometheus within a short window share one request.

A fake of our own ``BatchingProvider`` interface answers each query with its own text, so
every tick can check it got its own answers; the same over a real Prometheus is in
test_prometheus_integration.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from coalmine.analysis.prometheus import Gathering
from coalmine.analysis.provider import QueryResult, Sample

WINDOW = 0.3


class Echo:
    """Answers each query with one sample labelled with the query; None (refused) when a
    query contains ``bad``, as Prometheus refuses a combined query one part of which is bad."""

    def __init__(self, delay: float = 0.0) -> None:
        self.requests: list[list[str]] = []
        self.delay = delay
        self._lock = threading.Lock()

    def query(self, promql: str) -> QueryResult:
        raise AssertionError("a gathered tick asks query_many only")

    def query_many(self, queries: Sequence[str]) -> list[QueryResult] | None:
        with self._lock:
            self.requests.append(list(queries))
        time.sleep(self.delay)
        if any("bad" in query for query in queries):
            return None
        return [QueryResult(samples=(Sample({"q": query}, 1.0),)) for query in queries]


def asked(results: list[QueryResult] | None) -> list[str] | None:
    return None if results is None else [r.samples[0].labels["q"] for r in results]


def ticks_at_once(gathering: Gathering, ticks: list[list[str]]) -> list[list[str] | None]:
    with ThreadPoolExecutor(max_workers=len(ticks)) as pool:
        futures = []
        for queries in ticks:
            futures.append(pool.submit(gathering.query_many, queries))
            time.sleep(0.02)  # a few milliseconds apart, as ticks fall due
        return [asked(f.result(timeout=10)) for f in futures]


def test_ticks_within_the_window_share_one_request_and_each_gets_its_own_answers() -> None:
    echo = Echo()
    ticks = [[f"a{i}", f"b{i}"] for i in range(4)]
    answers = ticks_at_once(Gathering(echo, WINDOW), ticks)
    assert answers == ticks
    assert len(echo.requests) == 1 and sorted(echo.requests[0]) == sorted(
        q for tick in ticks for q in tick
    )


def test_a_tick_after_the_window_asks_in_a_request_of_its_own() -> None:
    echo = Echo()
    gathering = Gathering(echo, 0.05)
    assert asked(gathering.query_many(["a"])) == ["a"]
    assert asked(gathering.query_many(["b"])) == ["b"]
    assert echo.requests == [["a"], ["b"]]


def test_a_tick_that_joins_while_the_request_is_on_its_way_starts_the_next_batch() -> None:
    echo = Echo(delay=0.3)  # a slow Prometheus: the first batch is closed while it answers
    gathering = Gathering(echo, 0.05)
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(gathering.query_many, ["a"])
        time.sleep(0.15)  # after the window, during the request
        second = pool.submit(gathering.query_many, ["b"])
        assert (asked(first.result(5)), asked(second.result(5))) == (["a"], ["b"])
    assert echo.requests == [["a"], ["b"]]


def test_one_ticks_bad_query_is_refused_to_that_tick_alone() -> None:
    """Prometheus refuses the whole combined query: each tick asks again on its own, and
    only the tick whose query is bad hears None (and falls back to query by query)."""
    echo = Echo()
    answers = ticks_at_once(Gathering(echo, WINDOW), [["a"], ["bad("], ["c"]])
    assert answers == [["a"], None, ["c"]]
    assert sorted(map(tuple, echo.requests[1:])) == [("a",), ("bad(",), ("c",)]


def test_a_refused_tick_asking_alone_is_not_asked_twice() -> None:
    echo = Echo()
    assert Gathering(echo, 0.05).query_many(["bad("]) is None
    assert echo.requests == [["bad("]]


def test_a_failed_request_is_every_ticks_failure() -> None:
    class Down(Echo):
        def query_many(self, queries: Sequence[str]) -> list[QueryResult] | None:
            super().query_many(queries)
            return [QueryResult.provider_error("Prometheus unreachable")] * len(queries)

    down = Down()
    gathering = Gathering(down, WINDOW)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(gathering.query_many, queries) for queries in (["a", "b"], ["c"])]
        results = [f.result(5) for f in futures]
    assert [[r.error for r in got or []] for got in results] == [
        ["Prometheus unreachable"] * 2,
        ["Prometheus unreachable"],
    ]
    assert len(down.requests) == 1


def test_a_provider_that_raises_strands_no_tick() -> None:
    class Broken(Echo):
        def query_many(self, queries: Sequence[str]) -> list[QueryResult] | None:
            super().query_many(queries)
            raise RuntimeError("a bug")

    gathering = Gathering(Broken(), WINDOW)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(gathering.query_many, [q]) for q in ("a", "b")]
        results = [f.result(5) for f in futures]
    assert all(r is not None and r[0].error == "Prometheus query failed" for r in results)


def test_a_batch_is_no_longer_than_its_limit() -> None:
    echo = Echo()
    long = ["x" * 40, "y" * 40, "z" * 40]
    answers = ticks_at_once(Gathering(echo, WINDOW, limit=100), [[q] for q in long])
    assert answers == [[q] for q in long]
    assert sorted(len(r) for r in echo.requests) == [1, 2], "two fit in 100 characters"
