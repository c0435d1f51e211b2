"""Custom PromQL is scoped to the object's namespace: injected in every selector, or refused.

The real Prometheus check (two namespaces, same metric) is in test_prometheus_integration.py.
"""

from __future__ import annotations

import time
from datetime import timedelta

import promql_parser as pp
import pytest

from coalmine.analysis.measure import measure_check
from coalmine.analysis.scope import Scope, SideScope
from coalmine.analysis.scoping import UnscopableQueryError, scope_to_namespace
from coalmine.api import Check
from coalmine.api.checks import PromQLCheck
from coalmine.rollout.types import QueryProblem
from tests.coalmine.fakes import FakeProvider, vector

NS = 'namespace="team-a"'


def scoped(query: str) -> str:
    return scope_to_namespace(query, "namespace", "team-a")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("up", f"up{{{NS}}}"),
        ('sum(rate(errors{job="x"}[5m]))', f'sum(rate(errors{{job="x",{NS}}}[5m]))'),
        ("a / on () group_left () b", f"a{{{NS}}} / on () group_left () b{{{NS}}}"),
        (
            "max_over_time(rate(a[1m] offset 2m)[5m:30s] offset 1m)",
            f"max_over_time(rate(a{{{NS}}}[1m] offset 2m)[5m:30s] offset 1m)",
        ),
        ("rate(a[1m] @ end())", f"rate(a{{{NS}}}[1m] @ end())"),
        ("b offset -5m", f"b{{{NS}}} offset -5m"),
        ('{__name__=~"a.*"}', f'{{__name__=~"a.*",{NS}}}'),
        # The parser prints matchers sorted; the rewrite must reproduce that to keep modifiers.
        ('{zone="1", __name__="m"} offset 1m', f'{{__name__="m",{NS},zone="1"}} offset 1m'),
        ('a{z=~"1",z="2",z!="0"} @ 100', f'a{{{NS},z!="0",z="2",z=~"1"}} @ 100.000'),
        ("scalar(sum(a))", f"scalar(sum(a{{{NS}}}))"),
        ("count(a) # a comment is dropped\n + b", f"count(a{{{NS}}}) + b{{{NS}}}"),
        # The user may scope it themselves: the matcher then appears twice, harmlessly.
        ('a{namespace="team-a"}', f"a{{{NS},{NS}}}"),
        ("vector(1)", "vector(1)"),
    ],
)
def test_every_selector_gets_the_namespace_matcher(query: str, expected: str) -> None:
    assert scoped(query) == expected


@pytest.mark.parametrize(
    "value", ['q"uote', "back\\slash", "new\nline", "tab\t", "é€", '",namespace=~".*']
)
def test_label_values_survive_the_rewrite_escaped(value: str) -> None:
    # The bindings print matcher values unescaped; a value holding `",namespace=~".*` must
    # stay one value of one matcher, not become a second matcher.
    (selector,) = _selectors(pp.parse(scoped("a{x=" + _quoted(value) + "}")))
    assert sorted((m.name, m.value) for m in selector.matchers.matchers) == [
        ("namespace", "team-a"),
        ("x", value),
    ]


@pytest.mark.parametrize(
    "query",
    [
        'a{namespace=~".*"}',
        'a{namespace!="team-a"}',
        'a{namespace!~"team-a"}',
        'a{namespace="team-b"}',
        'sum(rate(a{namespace="team-a"}[1m])) + on() b{namespace=~"team-.*"}',
        'max_over_time(a{namespace=""}[5m:1m])',
    ],
)
def test_a_query_naming_another_namespace_is_refused(query: str) -> None:
    with pytest.raises(UnscopableQueryError, match='other than namespace="team-a"'):
        scoped(query)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("sum(", "not valid PromQL"),
        ('a{b="c" or d="e"}', "`or` inside a selector"),
        ("info(up)", "info reads unscoped series"),
    ],
)
def test_what_cannot_be_scoped_is_refused(query: str, reason: str) -> None:
    with pytest.raises(UnscopableQueryError, match=reason):
        scoped(query)


def test_without_a_namespace_label_custom_queries_are_refused() -> None:
    with pytest.raises(UnscopableQueryError, match="COALMINE_PROMETHEUS_NAMESPACE_LABEL"):
        scope_to_namespace("up", "", "team-a")


def test_the_operators_label_name_is_used() -> None:
    assert scope_to_namespace("up", "kubernetes_namespace", "x") == 'up{kubernetes_namespace="x"}'


def test_a_refused_custom_query_is_never_sent_and_is_a_spec_problem() -> None:
    side = SideScope(model="iris", version="v2", variant="canary", namespace="team-a")
    scope = Scope(canary=side, stable=None, window=timedelta(minutes=1))
    provider = FakeProvider()
    check = Check(name="c", promql=PromQLCheck(query='up{namespace=~".*"}', max=1.0))
    m = measure_check(provider, scope, check)  # the check alone, without the freshness query
    assert provider.queries == []
    assert m.canary.problem == QueryProblem.QUERY_INVALID
    assert m.canary.error is not None and "other than" in m.canary.error


def test_placeholders_are_filled_before_scoping() -> None:
    side = SideScope(model="iris", version="v2", variant="canary", namespace="team-a")
    scope = Scope(canary=side, stable=None, window=timedelta(minutes=1))
    # The parser prints matchers sorted by name.
    sent = f'sum(rate(up{{{NS},version="v2"}}[1m]))'
    provider = FakeProvider({sent: vector(({}, 0.5))})
    check = Check(
        name="c",
        promql=PromQLCheck(query='sum(rate(up{version="{{version}}"}[{{window}}]))', max=1.0),
    )
    m = measure_check(provider, scope, check)  # the check alone, without the freshness query
    assert provider.queries == [sent] and m.canary.value == 0.5


def _quoted(value: str) -> str:
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}
    return '"' + "".join(escapes.get(c, c) for c in value) + '"'


def _selectors(expr: pp.Expr) -> list[pp.VectorSelector]:
    found: list[pp.VectorSelector] = []
    pp.walk(expr, pre_visit=lambda n: found.append(n) if isinstance(n, pp.VectorSelector) else None)
    return found


@pytest.mark.parametrize(
    "query",
    [
        "(" * 2000 + "a" + ")" * 2000,  # minutes in the parser's bindings, were it parsed
        "a" + " + a" * 1000,
        "-" * 40 + "a",
        "abs(" * 17 + "a" + ")" * 17,
        "a" + " and a" * 33,
    ],
)
def test_a_query_too_deep_or_too_long_a_chain_is_refused_before_parsing(query: str) -> None:
    started = time.monotonic()
    with pytest.raises(UnscopableQueryError, match="more than 16 nested brackets or 32 operators"):
        scoped(query)
    assert time.monotonic() - started < 0.1


def test_brackets_and_operators_in_strings_comments_and_selectors_do_not_count() -> None:
    query = (
        'sum(a{x="((((((((((((((((((", y=~"' + "+".join("abcdefghijklmnopqrstuvwxyz012345") + '"})'
        " # ((((((((((((((((( + + + + + + + + + + + + + + + + + + + + + + + + + + + + + + + + + +"
    )
    assert NS in scoped(query)


def test_the_largest_allowed_query_is_scoped_quickly() -> None:
    query = "(" * 16 + "a" + " + a" * 32 + ")" * 16
    started = time.monotonic()
    assert scoped(query).count(NS) == 33
    assert time.monotonic() - started < 2.0  # about 0.2 s here; the bound is for slow CI
