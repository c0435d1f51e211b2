"""The provider against a real Prometheus and real HTTP servers over loopback sockets.

Two tenants' series share one Prometheus (it scrapes itself twice, once per namespace label),
so a custom query of tenant A that could see tenant B's series would count 2, not 1.
"""

from __future__ import annotations

import http.server
import math
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import timedelta

import pytest

from coalmine.analysis.measure import measure_check
from coalmine.analysis.prometheus import MAX_RESPONSE_BYTES, PrometheusProvider, SharedProviders
from coalmine.analysis.provider import QueryResult
from coalmine.analysis.scope import Scope, SideScope
from coalmine.api import Check
from coalmine.api.checks import PromQLCheck
from coalmine.rollout.judge import judge
from coalmine.rollout.types import QueryProblem
from coalmine.rollout.verdicts import Judging
from e2e.devcluster.process import free_port
from e2e.devcluster.prometheus import PrometheusServer
from tests.loopback import serving

pytestmark = pytest.mark.integration

METRIC = "prometheus_build_info"  # one series per scrape target, on every Prometheus
TEAM_A = SideScope(model="iris", version="v2", variant="canary", namespace="team-a")
SECOND = timedelta(seconds=1)


@pytest.fixture
def two_tenants(prometheus: PrometheusServer) -> PrometheusServer:
    target = prometheus.url.removeprefix("http://")
    for team in ("team-a", "team-b"):
        prometheus.set_targets([target], job=team, labels={"namespace": team})
    # A few samples each, so a subquery's steps (aligned to whole seconds) all find data.
    prometheus.wait_for(f"count(count_over_time({METRIC}[1m]) >= 3) == 2", timeout=60)
    return prometheus


def custom(prometheus: PrometheusServer, query: str) -> tuple[float | None, str | None]:
    check = Check(name="c", promql=PromQLCheck(query=query, max=10.0))
    scope = Scope(canary=TEAM_A, stable=None, window=timedelta(minutes=1))
    with PrometheusProvider(prometheus.url, 5 * SECOND) as provider:
        # The check alone: the freshness guard (measure_checks) would ask for model-server
        # series this Prometheus does not have.
        measurement = measure_check(provider, scope, check)
    return measurement.canary.value, measurement.canary.error


@pytest.mark.parametrize(
    "query",
    [
        f"count({METRIC})",
        f'count({{__name__="{METRIC}"}})',
        'count({__name__=~"prometheus_build_.*"})',
        f"max_over_time(count({METRIC})[30s:1s])",
        f"count(count_over_time({METRIC}[1m]))",
        f'count(label_replace({METRIC}, "namespace", "team-b", "", ""))',
        f"count({METRIC} or on() {METRIC} offset 1s)",
        'count({namespace="{{namespace}}", __name__="' + METRIC + '"})',
        # Long enough that the parser's rendering spans several lines.
        f'count({METRIC}{{job=~".+", version!="none"}}) * count({METRIC}{{instance=~".+"}})'
        f" / count({METRIC}) # both tenants would make this 4",
    ],
)
def test_tenant_a_never_counts_tenant_bs_series(two_tenants: PrometheusServer, query: str) -> None:
    assert custom(two_tenants, query) == (1.0, None)


@pytest.mark.parametrize(
    "query",
    [
        f'count({METRIC}{{namespace=~".*"}})',
        f'count({METRIC}{{namespace!="team-a"}})',
        f'count({METRIC}{{namespace="team-b"}})',
        f'count({METRIC}) + count({METRIC}{{namespace=~"team-.+"}})',
    ],
)
def test_a_query_reaching_for_another_namespace_is_refused(
    two_tenants: PrometheusServer, query: str
) -> None:
    value, error = custom(two_tenants, query)
    assert value is None and error is not None and "other than namespace" in error


def test_each_result_type_of_a_real_prometheus(two_tenants: PrometheusServer) -> None:
    with PrometheusProvider(two_tenants.url, 5 * SECOND) as provider:
        scalar = provider.query(f'scalar(count({METRIC}{{namespace="team-a"}}))')
        matrix = provider.query(f"{METRIC}[1m]")
        string = provider.query('"text"')
        vector = provider.query(f"count by (namespace) ({METRIC})")
    assert scalar.error is None and scalar.scalar() == 1.0
    assert sorted(s.labels["namespace"] for s in vector.samples) == ["team-a", "team-b"]
    for answer in (matrix, string):
        assert answer.problem == QueryProblem.QUERY_INVALID and not answer.samples
        assert answer.error is not None and "a check needs an instant vector" in answer.error


def test_a_query_prometheus_refuses_is_the_specs_problem_without_its_words(
    prometheus: PrometheusServer,
) -> None:
    with PrometheusProvider(prometheus.url, 5 * SECOND) as provider:
        unparsable = provider.query("sum(")
        # Parses, but fails when it runs: an execution error (422).
        failing = provider.query('label_replace(vector(1), "a", "x", "a", "(")')
    assert unparsable.problem == QueryProblem.QUERY_INVALID
    assert unparsable.error == "Prometheus refused the query (HTTP 400, bad_data)"
    assert failing.problem == QueryProblem.QUERY_INVALID
    assert failing.error == "Prometheus refused the query (HTTP 422, execution)"


class Misbehaving(http.server.BaseHTTPRequestHandler):
    """One bad answer per path: what a broken or hostile server behind an address sends."""

    redirect_to = ""

    def do_GET(self) -> None:
        if self.path.startswith("/slow/"):
            time.sleep(3)
            self._send(200, b'{"status":"success","data":{"resultType":"vector","result":[]}}')
        elif self.path.startswith("/drip/"):
            self.send_response(200)
            self.send_header("Content-Length", "64")
            self.end_headers()
            for _ in range(64):  # each byte well within the read timeout, the whole not
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.05)
        elif self.path.startswith("/huge/"):
            self._send(200, b" " * (MAX_RESPONSE_BYTES + 1))
        elif self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", self.redirect_to + "/api/v1/query?query=up")
            self.end_headers()
        elif self.path.startswith("/error/"):
            self._send(500, b"db at 10.0.0.7:5432 password=hunter2")
        else:
            self._send(200, b"<html>password=hunter2</html>")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def misbehaving(prometheus: PrometheusServer) -> Iterator[str]:
    Misbehaving.redirect_to = prometheus.url
    with serving(Misbehaving) as url:
        yield url


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/slow", "Prometheus did not answer in time"),
        ("/drip", "Prometheus did not answer in time"),
        ("/huge", f"Prometheus answered more than {MAX_RESPONSE_BYTES} bytes"),
        ("/redirect", "Prometheus answered a redirect (HTTP 302)"),
        ("/error", "Prometheus answered HTTP 500"),
        ("/html", "Prometheus answered without a query result"),
    ],
)
def test_a_misbehaving_server_is_a_provider_error_in_bounded_time(
    misbehaving: str, path: str, reason: str
) -> None:
    elapsed, answer = timed(lambda: PrometheusProvider(misbehaving + path, SECOND).query("up"))
    assert answer.problem == QueryProblem.PROVIDER_ERROR and answer.error == reason
    assert elapsed < 2.5, "one query must end within about its timeout"


def test_nothing_listening_is_unreachable() -> None:
    answer = PrometheusProvider(f"http://127.0.0.1:{free_port()}", SECOND).query("up")
    assert answer.problem == QueryProblem.PROVIDER_ERROR
    assert answer.error == "Prometheus unreachable"


def timed(action: Callable[[], QueryResult]) -> tuple[float, QueryResult]:
    start = time.monotonic()
    result = action()
    return time.monotonic() - start, result


@pytest.mark.parametrize(
    ("query", "bound"),
    [
        ("vector(0) / vector(0)", {"max": 10.0}),  # NaN: a 0/0 rate, no requests at all
        ("vector(1) / vector(0)", {"max": 10.0}),  # +Inf passes no `max`
        ("vector(-1) / vector(0)", {"min": 0.0}),  # -Inf passes no `min`
        ("vector(0) / vector(0)", {"min": 0.0}),  # NaN passes no `min` either
    ],
)
def test_nan_and_infinity_from_prometheus_are_never_a_pass(
    prometheus: PrometheusServer, query: str, bound: dict[str, float]
) -> None:
    """Failure scenario 5: what a real Prometheus answers for 0/0 and x/0 is judged like no
    data (inconclusive), never as a value inside the threshold."""
    check = Check(name="c", promql=PromQLCheck(query=query, **bound))
    scope = Scope(canary=TEAM_A, stable=None, window=timedelta(minutes=1))
    with PrometheusProvider(prometheus.url, 5 * SECOND) as provider:
        measurement = measure_check(provider, scope, check)
    value = measurement.canary.value
    assert value is None or not math.isfinite(value), measurement
    verdict = judge(check, measurement, Judging(min_samples=1))
    assert verdict.verdict == "inconclusive", verdict


def own_metrics(prometheus: PrometheusServer) -> str:
    with urllib.request.urlopen(f"{prometheus.url}/metrics", timeout=5) as response:
        return str(response.read().decode())


def accepted_connections(prometheus: PrometheusServer) -> float:
    """Prometheus' own count of the HTTP connections it accepted (this read's included)."""
    text = own_metrics(prometheus)
    found = re.search(
        r'^net_conntrack_listener_conn_accepted_total\{listener_name="http"\} (\S+)$', text, re.M
    )
    assert found, "Prometheus exports no accepted-connection count"
    return float(found.group(1))


def test_ticks_reuse_one_client_and_its_connections(prometheus: PrometheusServer) -> None:
    """The operator's factory: each tick borrows the shared provider of its address and
    "closes" it when done. 12 ticks of 4 concurrent queries (a canary tick's freshness and
    check queries) open at most 4 connections, where a client per tick opened 48."""
    providers = SharedProviders()
    before = accepted_connections(prometheus)
    for _ in range(12):
        with (
            closing(providers(prometheus.url, 5 * SECOND)) as provider,
            ThreadPoolExecutor(max_workers=4) as pool,
        ):
            results = list(pool.map(provider.query, ["vector(1)"] * 4))
        assert [r.scalar() for r in results] == [1.0] * 4, results
    opened = accepted_connections(prometheus) - before - 1  # less the second count's own
    providers.close()
    assert 1 <= opened <= 4, opened


def test_queries_asked_together_answer_as_if_asked_alone(two_tenants: PrometheusServer) -> None:
    """A tick's queries in one request (``query_many``): each query's series and values, NaN
    and empty results included, as the same query alone returns them."""
    queries = [
        f"count by (namespace) ({METRIC})",  # two series, a label each
        f"sum({METRIC})",  # one unlabelled series
        "vector(0) / vector(0)",  # NaN
        "sum(coalmine_no_such_metric)",  # empty
        f"{METRIC}",  # raw series, with their __name__
    ]
    with PrometheusProvider(two_tenants.url, 5 * SECOND) as provider:
        together = provider.query_many(queries)
        alone = [provider.query(query) for query in queries]
    assert together is not None

    def series(result: QueryResult) -> list[tuple[list[tuple[str, str]], str]]:
        return sorted((sorted(s.labels.items()), repr(s.value)) for s in result.samples)

    assert [series(r) for r in together] == [series(r) for r in alone]
    assert [len(r.samples) for r in together] == [2, 1, 1, 0, 2]


def test_queries_prometheus_refuses_together_are_asked_alone_and_failures_shared(
    prometheus: PrometheusServer,
) -> None:
    with PrometheusProvider(prometheus.url, 5 * SECOND) as provider:
        assert provider.query_many(["vector(1)", "sum(up[1m]"]) is None  # one does not parse
    unreachable = PrometheusProvider(f"http://127.0.0.1:{free_port()}", SECOND)
    failed = unreachable.query_many(["vector(1)", "vector(2)"])
    assert failed is not None
    assert [r.error for r in failed] == ["Prometheus unreachable"] * 2


def query_requests(prometheus: PrometheusServer) -> float:
    """Prometheus' own count of the requests its query endpoint answered."""
    found = re.findall(
        r'^prometheus_http_requests_total\{code="\d+",handler="/api/v1/query"\} (\S+)$',
        own_metrics(prometheus),
        re.M,
    )
    return sum(float(count) for count in found)


def test_ticks_asking_together_share_one_request(two_tenants: PrometheusServer) -> None:
    """Three ticks of three canaries, a few milliseconds apart, through the operator's
    factory: one request to Prometheus, and each tick gets what it would have alone."""
    providers = SharedProviders(gather=0.5)
    ticks = [
        [f"count by (namespace) ({METRIC})", "vector(0) / vector(0)"],
        [f"sum({METRIC})", "sum(coalmine_no_such_metric)"],
        [f"{METRIC}", "vector(3)"],
    ]
    before = query_requests(two_tenants)

    def tick(queries: list[str]) -> list[QueryResult] | None:
        with closing(providers(two_tenants.url, 5 * SECOND)) as provider:
            return provider.query_many(queries)

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = []
        for queries in ticks:
            futures.append(pool.submit(tick, queries))
            time.sleep(0.05)
        together = [f.result(timeout=15) for f in futures]
    asked = query_requests(two_tenants) - before
    with PrometheusProvider(two_tenants.url, 5 * SECOND) as provider:
        alone = [[provider.query(q) for q in queries] for queries in ticks]
    providers.close()

    def series(result: QueryResult) -> list[tuple[list[tuple[str, str]], str]]:
        return sorted((sorted(s.labels.items()), repr(s.value)) for s in result.samples)

    assert all(results is not None for results in together)
    assert [[series(r) for r in results or []] for results in together] == [
        [series(r) for r in results] for results in alone
    ]
    assert asked == 1, f"{asked} requests for three ticks"
