"""Every answer of /api/v1/query becomes a QueryResult with a short fixed reason.

The same cases over real sockets (a real Prometheus, a real HTTP server) are in
test_prometheus_integration.py; this is the table of what each answer means.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from coalmine.analysis.prometheus import SharedProviders, interpret
from coalmine.analysis.provider import Sample
from coalmine.rollout.types import QueryProblem

SECRET = "internal-host.corp:5432 password=hunter2"


def ok(result_type: str, result: object) -> bytes:
    return json.dumps(
        {"status": "success", "data": {"resultType": result_type, "result": result}}
    ).encode()


def error(kind: str) -> bytes:
    return json.dumps({"status": "error", "errorType": kind, "error": SECRET}).encode()


def test_a_vector_is_samples() -> None:
    answer = interpret(200, ok("vector", [{"metric": {"a": "1"}, "value": [1.0, "NaN"]}]))
    assert answer.error is None and answer.samples[0].labels == {"a": "1"}


def test_a_scalar_is_one_unlabelled_sample() -> None:
    # It used to raise (the scalar's [time, "value"] is no list of samples) and stop the tick.
    assert interpret(200, ok("scalar", [1.7e9, "0.25"])).samples == (Sample({}, 0.25),)


@pytest.mark.parametrize(
    ("result_type", "result", "what"),
    [
        ("matrix", [{"metric": {}, "values": [[1.0, "1"]]}], "range vector"),
        ("string", [1.7e9, "hello"], "string"),
    ],
)
def test_a_range_vector_or_string_is_the_queries_fault(
    result_type: str, result: object, what: str
) -> None:
    answer = interpret(200, ok(result_type, result))
    assert answer.problem == QueryProblem.QUERY_INVALID and not answer.samples
    assert answer.error == (
        f"the query returns a {what}; a check needs an instant vector or a scalar"
    )


@pytest.mark.parametrize(
    ("status", "body", "problem", "reason"),
    [
        (
            400,
            error("bad_data"),
            "query_invalid",
            "Prometheus refused the query (HTTP 400, bad_data)",
        ),
        (
            422,
            error("execution"),
            "query_invalid",
            "Prometheus refused the query (HTTP 422, execution)",
        ),
        (400, SECRET.encode(), "query_invalid", "Prometheus refused the query (HTTP 400)"),
        (503, error("timeout"), "provider_error", "Prometheus answered HTTP 503, timeout"),
        (500, SECRET.encode(), "provider_error", "Prometheus answered HTTP 500"),
        (404, b"<html>" + SECRET.encode(), "provider_error", "Prometheus answered HTTP 404"),
        (401, b"", "provider_error", "Prometheus answered HTTP 401"),
        (302, b"", "provider_error", "Prometheus answered a redirect (HTTP 302)"),
        (200, SECRET.encode(), "provider_error", "Prometheus answered without a query result"),
        (200, b"\xff\xfe", "provider_error", "Prometheus answered without a query result"),
        (200, b"[]", "provider_error", "Prometheus answered without a query result"),
        (200, error("internal"), "provider_error", "Prometheus answered without a query result"),
        (200, ok("vector", [{"metric": {}}]), "provider_error", "malformed query result"),
        (200, ok("vector", [{"metric": {}, "value": [1, None]}]), "provider_error", "malformed"),
        (200, ok("vector", [1, 2]), "provider_error", "malformed query result"),
        (200, ok("scalar", []), "provider_error", "malformed query result"),
        (200, ok("histogram", []), "provider_error", "unknown result type"),
        (200, b'{"status": "success"}', "provider_error", "malformed query result"),
    ],
)
def test_failures_are_classified_and_never_quote_the_body(
    status: int, body: bytes, problem: str, reason: str
) -> None:
    answer = interpret(status, body)
    assert answer.problem == QueryProblem(problem) and not answer.samples
    assert answer.error is not None and reason in answer.error
    assert "hunter2" not in answer.error and "internal-host" not in answer.error


def test_an_unknown_error_type_is_not_repeated() -> None:
    answer = interpret(503, error("see http://attacker/" + SECRET))
    assert answer.error == "Prometheus answered HTTP 503"


def test_shared_providers_are_one_per_address_and_timeout_and_bounded() -> None:
    """No query is sent: which provider each borrow gets, and that a borrow's close leaves
    the shared one open (the sharing itself, over sockets: test_prometheus_integration.py)."""
    second = timedelta(seconds=1)
    providers = SharedProviders(limit=2)
    a = providers("http://a:9090", second)
    a.close()
    assert providers("http://a:9090", second).provider is a.provider
    assert providers("http://a:9090", 2 * second).provider is not a.provider
    providers("http://b:9090", second)  # a at 1 s is now the least recently used of three
    assert providers("http://a:9090", second).provider is not a.provider
    assert not a.provider._client.is_closed  # dropped, never closed under a running tick
    providers.close()
