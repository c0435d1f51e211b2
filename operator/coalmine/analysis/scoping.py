"""Scope a user's PromQL to the object's namespace: every series selector gets the matcher.

A custom check's query is written by whoever may edit a ModelDeployment, and many tenants
share one Prometheus: unscoped, ``sum(http_requests_total)`` reads every namespace's series.
So the query is parsed (``promql-parser``, the Rust parser's bindings), ``namespace="<own>"``
is added to each vector selector (inside ranges, subqueries and functions alike), and the
text sent to Prometheus is the parser's own rendering of the result, which is parsed again
and checked: every selector carries the matcher or nothing is sent. Matchers AND together,
so no matcher a query adds (``namespace=~".*"``) can widen the injected one; a query that
names another namespace at all is refused, so the mistake is said rather than read as
"no data".
"""

from __future__ import annotations

from collections.abc import Iterator

import promql_parser as pp

# Pairs, not a dict: the bindings' MatchOp is not hashable.
_OPS = (
    (pp.MatchOp.Equal, "="),
    (pp.MatchOp.NotEqual, "!="),
    (pp.MatchOp.Re, "=~"),
    (pp.MatchOp.NotRe, "!~"),
)
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


MAX_NESTING = 16
"""Brackets inside brackets a custom query may use."""
MAX_OPERATORS = 32
"""Operators (``+``, ``and``, comparisons...) a custom query may use. Both bounds are checked
on the text before parsing: the parser's bindings take time and memory growing with the
square of the tree's depth or worse (200 nested parentheses, 4 s; 2000, minutes), and a
query is one tenant's to write."""
_WORD_OPERATORS = frozenset({"and", "or", "unless", "atan2"})

IMPLICIT_READS = frozenset({"info"})
"""Functions that read series no selector names (``info`` joins ``target_info`` itself)."""


class UnscopableQueryError(Exception):
    """The query cannot be scoped; ``reason`` says why in a few words for the status."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def scope_to_namespace(query: str, label: str, namespace: str) -> str:
    """``query`` with ``label="namespace"`` in every selector, as PromQL text to send.

    >>> scope_to_namespace('sum(rate(errors{job="x"}[5m]))', "namespace", "team-a")
    'sum(rate(errors{job="x",namespace="team-a"}[5m]))'
    """
    if not label:
        raise UnscopableQueryError(
            "custom queries need the operator's namespace label"
            " (COALMINE_PROMETHEUS_NAMESPACE_LABEL)"
        )
    _check_size(query)
    expr = _parse(query, "not valid PromQL")
    for selector in _selectors(expr):
        _check_own_namespace(selector, label, namespace)
    if _calls(expr) & IMPLICIT_READS:
        raise UnscopableQueryError(
            f"custom query refused: {', '.join(sorted(IMPLICIT_READS))} reads unscoped series"
        )
    scoped = pp.transform(expr, post_visit=lambda node: _with_matcher(node, label, namespace))
    text = scoped.prettify()
    if not all(_scoped(s, label, namespace) for s in _selectors(_parse(text, "cannot be scoped"))):
        raise UnscopableQueryError("custom query cannot be scoped to its namespace")
    return text


def _check_size(query: str) -> None:
    """Refuse a query nesting or chaining more than the bounds, by one pass over its text
    (strings and comments skipped; ``=`` inside a selector's braces is no operator)."""
    depth = deepest = braces = operators = 0
    i = 0
    while i < len(query):
        char = query[i]
        if char in "\"'`":
            i = _string_end(query, i)
        elif char == "#":
            end = query.find("\n", i)
            i = len(query) if end < 0 else end
        elif char in "([{":
            depth, braces = depth + 1, braces + (char == "{")
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth, braces = depth - 1, braces - (char == "}")
        elif char in "+-*/%^<>=!" and not braces:
            operators += 1
            i += query[i + 1 : i + 2] == "="  # ==, !=, <=, >= are one operator
        elif char.isalpha() or char == "_":
            start = i
            while i + 1 < len(query) and (query[i + 1].isalnum() or query[i + 1] in "_:"):
                i += 1
            operators += query[start : i + 1] in _WORD_OPERATORS
        i += 1
    if deepest > MAX_NESTING or operators > MAX_OPERATORS:
        raise UnscopableQueryError(
            f"custom query refused: more than {MAX_NESTING} nested brackets or"
            f" {MAX_OPERATORS} operators"
        )


def _string_end(query: str, start: int) -> int:
    """Index of the quote closing the string opened at ``start`` (backslash escapes, except
    in a raw backtick string); the end of the query when it is unclosed."""
    quote, i = query[start], start + 1
    while i < len(query) and query[i] != quote:
        i += 2 if query[i] == "\\" and quote != "`" else 1
    return i


def _parse(query: str, what: str) -> pp.Expr:
    try:
        return pp.parse(query)
    except Exception as exc:  # the bindings raise ValueError, but any failure means refusal
        first_line = (str(exc).splitlines() or [""])[0][:120]
        raise UnscopableQueryError(f"custom query {what}: {first_line}") from exc


def _selectors(expr: pp.Expr) -> Iterator[pp.VectorSelector]:
    found: list[pp.VectorSelector] = []

    def visit(node: pp.Expr) -> None:
        if isinstance(node, pp.VectorSelector):
            found.append(node)

    pp.walk(expr, pre_visit=visit)
    return iter(found)


def _calls(expr: pp.Expr) -> set[str]:
    names: set[str] = set()

    def visit(node: pp.Expr) -> None:
        if isinstance(node, pp.Call):
            names.add(node.func.name)

    pp.walk(expr, pre_visit=visit)
    return names


def _check_own_namespace(selector: pp.VectorSelector, label: str, namespace: str) -> None:
    if selector.matchers.or_matchers:
        raise UnscopableQueryError("custom query refused: `or` inside a selector cannot be scoped")
    for matcher in selector.matchers.matchers:
        if matcher.name == label and not (
            matcher.op == pp.MatchOp.Equal and matcher.value == namespace
        ):
            raise UnscopableQueryError(
                f'custom query refused: a selector matches {label} other than {label}="{namespace}"'
            )


def _with_matcher(node: pp.Expr, label: str, namespace: str) -> pp.Expr | None:
    """A selector with the namespace matcher added; None (unchanged) for any other node.

    The bindings render a selector's matchers unescaped, so the new selector is written here
    and parsed: its modifiers (``offset``, ``@``) are the tail of the parser's own rendering
    after the part this function can reproduce exactly; if it cannot, the query is refused.
    """
    if not isinstance(node, pp.VectorSelector):
        return None
    matchers = list(node.matchers.matchers)
    rendered = node.prettify()
    head = _selector_text(node.name, matchers)
    if not rendered.startswith(head):
        raise UnscopableQueryError("custom query cannot be scoped to its namespace")
    own = pp.Matcher(pp.MatchOp.Equal, label, namespace)
    scoped: pp.Expr = _parse(
        _selector_text(node.name, [*matchers, own]) + rendered[len(head) :], "cannot be scoped"
    )
    return scoped


def _selector_text(name: str | None, matchers: list[pp.Matcher]) -> str:
    # Sorted as the parser prints them (by their text), so the two renderings can be compared.
    inner = ",".join(sorted(f'{m.name}{_op(m.op)}"{_escape(m.value)}"' for m in matchers))
    return f"{name or ''}{{{inner}}}" if matchers or not name else name


def _op(op: pp.MatchOp) -> str:
    return next(text for known, text in _OPS if known == op)


def _escape(value: str) -> str:
    return "".join(_ESCAPES.get(char, char) for char in value)


def _scoped(selector: pp.VectorSelector, label: str, namespace: str) -> bool:
    return not selector.matchers.or_matchers and any(
        m.name == label and m.op == pp.MatchOp.Equal and m.value == namespace
        for m in selector.matchers.matchers
    )
