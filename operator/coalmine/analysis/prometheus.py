"""The Prometheus provider: instant queries over HTTP (``httpx``), the only module doing I/O here.

Every answer becomes a ``QueryResult``, never an exception: a scalar is one unlabelled sample,
a range vector or a string is the spec's fault, and everything else (timeout, connection
refused, 5xx, a redirect, a body that is not JSON or too big) is the provider's. The reasons
are short fixed texts: no response body and no URL (it may carry credentials) reaches the
status, and a tenant cannot use the operator to read or relay what some server answered.
"""

from __future__ import annotations

import functools
import json
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import TracebackType
from typing import Any

import httpx

from coalmine.analysis.batch import BatchingProvider
from coalmine.analysis.provider import QueryResult, Sample
from coalmine.rollout.types import QueryProblem

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
"""A check's answer is a few hundred series at most (the input-drift buckets, 336)."""

QUERY_INVALID_STATUSES = frozenset({400, 422})
"""Prometheus: 400 bad_data (the query does not parse), 422 execution (it cannot run)."""

KNOWN_ERROR_TYPES = frozenset(
    {"bad_data", "execution", "timeout", "canceled", "internal", "unavailable", "not_found"}
)
"""Prometheus' own ``errorType`` words: a fixed vocabulary, so safe to repeat in a reason."""


class PrometheusProvider:
    """Instant queries against one Prometheus, with a timeout and no hidden retries.

    Retries are the next tick's job: a retry with back-off would stretch one failed query
    past the analysis interval. Redirects are not followed: the operator allows a Prometheus
    by its address, and a redirect would send the query (and any credentials) elsewhere.
    """

    def __init__(self, address: str, timeout: timedelta) -> None:
        self._timeout = max(timeout.total_seconds(), 0.1)
        self._client = httpx.Client(
            base_url=address.rstrip("/"),
            timeout=self._timeout,
            verify=_tls(),
            follow_redirects=False,
            # No proxy variables or .netrc from the operator's environment.
            trust_env=False,
        )
        self.address = address

    def query(self, promql: str) -> QueryResult:
        try:
            status, body = self._get(promql)
        except httpx.TimeoutException:
            return QueryResult.provider_error("Prometheus did not answer in time")
        except _TooSlowError:
            return QueryResult.provider_error("Prometheus did not answer in time")
        except _TooLargeError:
            return QueryResult.provider_error(
                f"Prometheus answered more than {MAX_RESPONSE_BYTES} bytes"
            )
        except httpx.TransportError:
            return QueryResult.provider_error("Prometheus unreachable")
        except Exception as exc:  # errors are data: a tick must never die on a query
            return QueryResult.provider_error(f"Prometheus query failed ({type(exc).__name__})")
        return interpret(status, body)

    def query_many(self, queries: Sequence[str]) -> list[QueryResult] | None:
        """Instant-vector queries in one request (``combined``), each result as if asked
        alone; a failure of the request is every query's. None when Prometheus refuses the
        combined query as invalid, so that one bad query is not blamed on the others."""
        if len(queries) == 1:
            return [self.query(queries[0])]
        result = self.query(combined(queries))
        if result.problem is QueryProblem.QUERY_INVALID:
            return None
        return split(result, len(queries))

    def _get(self, promql: str) -> tuple[int, bytes]:
        """Status and body, read within the timeout in all (httpx's timeout is per read, so
        a server dripping bytes would hold the tick without this deadline)."""
        deadline = time.monotonic() + self._timeout
        with self._client.stream("GET", "/api/v1/query", params={"query": promql}) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise _TooLargeError
                if time.monotonic() > deadline:
                    raise _TooSlowError
                chunks.append(chunk)
            return response.status_code, b"".join(chunks)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PrometheusProvider:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


QUERY_THREADS = 32
"""Query threads per Prometheus, for ticks measured query by query (a spec with a custom
check, or a combined query refused): as many as the operator's reconcile workers (default
32); more queue for a free thread. A thread is started only when none is idle, and an idle
one costs nothing."""


QUERY_LABEL = "coalmine_query"
"""The label ``combined`` tells each query's series apart by (its index)."""


def combined(queries: Sequence[str]) -> str:
    """One query answering every query of ``queries``: each one's series labelled with its
    index, joined by ``or`` (whose right side keeps every series no left one has the labels
    of: with distinct indices, all of them). ``["sum(a)", "b"]`` becomes
    ``label_replace(sum(a), "coalmine_query", "0", "", "") or label_replace(b, ...)``.
    """
    return " or ".join(
        f'label_replace({query}, "{QUERY_LABEL}", "{index}", "", "")'
        for index, query in enumerate(queries)
    )


def split(result: QueryResult, count: int) -> list[QueryResult] | None:
    """``combined``'s answer as ``count`` results; its failure is each one's. None when a
    series carries no index of ours (a result no query asked for)."""
    if result.error is not None:
        return [result] * count
    parts: list[list[Sample]] = [[] for _ in range(count)]
    for sample in result.samples:
        labels = dict(sample.labels)
        index = labels.pop(QUERY_LABEL, "")
        if not index.isdigit() or int(index) >= count:
            return None
        parts[int(index)].append(Sample(labels, sample.value))
    return [QueryResult(samples=tuple(part)) for part in parts]


GATHER_SECONDS = 0.5
"""How long the first tick to ask a Prometheus waits for other ticks' queries to join its
request. Canary ticks fall due at their own times, a few a second with 30-50 canaries
analysing, and each request cost 2 ms of the operator's CPU whatever it carried (B9). A
tick's measurement comes at most this much later (at most half the query timeout, so the
wait and the request fit in the analysis budget)."""

MAX_GATHERED_CHARS = 6000
"""A request gathers queries up to this length (a canary tick's are about 800 characters):
below the 8 KiB request lines that proxies in front of a Prometheus commonly accept."""


class Gathering:
    """The ``query_many`` of ticks that ask within ``window`` of each other, as one request.

    The first tick waits ``window`` for others to join its batch, then asks every query of
    the batch at once (``PrometheusProvider.query_many``) and hands each tick its own
    results. A failure of the request is every query's, as when each tick asked alone (they
    ask the same Prometheus). A batch Prometheus refuses as invalid is asked again tick by
    tick, so only the tick whose query is wrong is told None (and asks query by query)."""

    def __init__(
        self, provider: BatchingProvider, window: float, limit: int = MAX_GATHERED_CHARS
    ) -> None:
        self._provider, self._window, self._limit = provider, window, limit
        self._lock = threading.Lock()
        self._open: _Batch | None = None

    def query_many(self, queries: Sequence[str]) -> list[QueryResult] | None:
        batch, leads = self._join(queries)
        if leads:
            time.sleep(self._window)
            with self._lock:
                if self._open is batch:
                    self._open = None
            batch.ask(self._provider)
        else:
            batch.done.wait()  # the leader's request ends within the query timeout
        results = batch.results
        if results is None:
            return None if batch.only(queries) else self._provider.query_many(queries)
        return [results[query] for query in queries]

    def _join(self, queries: Sequence[str]) -> tuple[_Batch, bool]:
        with self._lock:
            batch = self._open
            if batch is None or not batch.fits(queries, self._limit):
                batch = self._open = _Batch()
                batch.add(queries)
                return batch, True
            batch.add(queries)
            return batch, False


class _Batch:
    def __init__(self) -> None:
        self.queries: dict[str, None] = {}  # in order, each once
        self.size = 0
        self.results: dict[str, QueryResult] | None = None
        self.done = threading.Event()

    def fits(self, queries: Sequence[str], limit: int) -> bool:
        return self.size + sum(len(query) for query in queries) <= limit

    def add(self, queries: Sequence[str]) -> None:
        for query in queries:
            if query not in self.queries:
                self.queries[query] = None
                self.size += len(query)

    def only(self, queries: Sequence[str]) -> bool:
        return set(self.queries) == set(queries)

    def ask(self, provider: BatchingProvider) -> None:
        asked = list(self.queries)
        try:
            answers = provider.query_many(asked)
            self.results = None if answers is None else dict(zip(asked, answers, strict=True))
        except Exception:  # errors are data (PrometheusProvider raises none): a bug's
            failed = QueryResult.provider_error("Prometheus query failed")
            self.results = dict.fromkeys(asked, failed)
        finally:  # whatever happened, no tick waits for this batch forever
            self.done.set()


class SharedProviders:
    """The operator's provider factory: one ``PrometheusProvider`` per address and timeout,
    kept across ticks with its keep-alive connections and a pool of query threads.

    A provider per tick built an httpx client, opened a connection per concurrent query and
    started a thread per query (four of each a canary tick), then threw them away: with 30
    canaries analysing, the threads that lived one tick were 40% of the operator's CPU
    (docs/benchmarks.md, B9). An httpx client is safe to share between threads, and a
    provider keeps no state of a query. The threads are per address: a silent Prometheus
    holds only its own objects' queries, never another Prometheus's. Addresses come from the
    operator's allowlist, so there are few; past ``limit`` the least recently used is dropped
    (not closed: a tick may still be querying through it; its connections close when it is
    collected, its idle threads when the pool is).
    """

    def __init__(
        self, limit: int = 32, threads: int = QUERY_THREADS, gather: float = GATHER_SECONDS
    ) -> None:
        self._shared: OrderedDict[tuple[str, timedelta], _Borrowed] = OrderedDict()
        self._lock = threading.Lock()
        self._limit, self._threads, self._gather = limit, threads, gather

    def __call__(self, address: str, timeout: timedelta) -> _Borrowed:
        key = (address, timeout)
        with self._lock:
            shared = self._shared.pop(key, None) or self._new(address, timeout)
            self._shared[key] = shared
            while len(self._shared) > self._limit:
                self._shared.popitem(last=False)
        return shared

    def _new(self, address: str, timeout: timedelta) -> _Borrowed:
        pool = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="query")
        provider = PrometheusProvider(address, timeout)
        gather = min(self._gather, timeout.total_seconds() / 2)
        return _Borrowed(provider, pool, Gathering(provider, gather))

    def close(self) -> None:
        with self._lock:
            for shared in self._shared.values():
                shared.provider.close()
                shared.pool.shutdown(wait=False, cancel_futures=True)
            self._shared.clear()


class _Borrowed:
    """A shared provider as one tick sees it: its queries may run in ``pool``, and the
    tick's ``close`` leaves both open for the next tick."""

    def __init__(
        self, provider: PrometheusProvider, pool: ThreadPoolExecutor, gathering: Gathering
    ) -> None:
        self.provider, self.pool, self._gathering = provider, pool, gathering

    def query(self, promql: str) -> QueryResult:
        return self.provider.query(promql)

    def query_many(self, queries: Sequence[str]) -> list[QueryResult] | None:
        return self._gathering.query_many(queries)

    def close(self) -> None:
        pass


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every provider. Building one loads the CA bundle: tens of ms of
    CPU, which every tick paid when each provider built its own (45% of the operator's CPU
    with 20 canaries analysing, docs/benchmarks.md B9). A context is safe to share."""
    return httpx.create_ssl_context(trust_env=False)


class _TooLargeError(Exception):
    pass


class _TooSlowError(Exception):
    pass


def interpret(status: int, body: bytes) -> QueryResult:
    """One HTTP answer of ``/api/v1/query`` as a ``QueryResult`` (the body is never quoted)."""
    if 300 <= status < 400:
        return QueryResult.provider_error(f"Prometheus answered a redirect (HTTP {status})")
    document = _json(body)
    if status in QUERY_INVALID_STATUSES:
        return QueryResult.query_invalid(
            f"Prometheus refused the query (HTTP {status}{_error_type(document)})"
        )
    if status != 200:
        return QueryResult.provider_error(
            f"Prometheus answered HTTP {status}{_error_type(document)}"
        )
    if not isinstance(document, dict) or document.get("status") != "success":
        return QueryResult.provider_error("Prometheus answered without a query result")
    try:
        return _result(document["data"])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return QueryResult.provider_error("Prometheus answered a malformed query result")


def _result(data: dict[str, Any]) -> QueryResult:
    kind, result = data["resultType"], data["result"]
    if kind == "vector":
        return QueryResult(samples=tuple(_sample(item) for item in result))
    if kind == "scalar":
        return QueryResult(samples=(Sample({}, float(result[1])),))
    if kind in ("matrix", "string"):
        return QueryResult.query_invalid(
            f"the query returns a {'range vector' if kind == 'matrix' else 'string'};"
            " a check needs an instant vector or a scalar"
        )
    return QueryResult.provider_error("Prometheus answered an unknown result type")


def _sample(item: dict[str, Any]) -> Sample:
    labels, value = item["metric"], item["value"]
    if not isinstance(labels, dict) or not isinstance(value, list):
        raise ValueError("not a vector sample")
    # Prometheus sends "NaN", "+Inf", "-Inf" as text; float() reads all three.
    return Sample({str(k): str(v) for k, v in labels.items()}, float(value[1]))


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:  # UnicodeDecodeError is one
        return None


def _error_type(document: object) -> str:
    """``, bad_data`` when Prometheus says which of its own error types this is."""
    kind = document.get("errorType") if isinstance(document, dict) else None
    return f", {kind}" if kind in KNOWN_ERROR_TYPES else ""
