"""The chart's Grafana dashboard read the way Grafana reads it: its variables resolved by their
own ``label_values`` queries, and every panel's every query, on a real Prometheus. Shared by
the integration tier (tests/coalmine/integration/test_monitoring.py) and the e2e tier
(e2e/test_views.py)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from e2e.devcluster import REPO_ROOT
from e2e.devcluster.prometheus import PrometheusServer

# Grafana's own interval variable, as it would set it for a dashboard open on the rollout: a
# rate window of many scrapes (both tiers scrape every second).
RATE_INTERVAL = "20s"
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")
# What helm's ConfigMap carries verbatim (templates/dashboard.yaml, .Files.Get).
DASHBOARD_FILE = REPO_ROOT / "charts" / "coalmine" / "files" / "dashboard.json"


def shipped_dashboard() -> dict[str, Any]:
    board: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return board


def substitute(expr: str, variables: dict[str, str]) -> str:
    # Longest names first, so $name never eats the start of $namespace.
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace(f"${name}", variables[name])
    return expr


def label_values(prometheus: PrometheusServer, query: str, variables: dict[str, str]) -> list[str]:
    """What Grafana lists for a ``label_values(selector, label)`` variable."""
    found = LABEL_VALUES.match(substitute(query, variables))
    assert found, f"not a label_values query: {query}"
    label = found["label"]
    rows = prometheus.query(f"count by ({label}) ({found['selector']})")
    return sorted(row["metric"][label] for row in rows if label in row["metric"])


def panel_queries(
    board: dict[str, Any], variables: dict[str, str], checks: list[str]
) -> list[tuple[str, str]]:
    """(panel title, query) for every target of every panel, a repeated panel once per value
    of its variable."""
    queries = []
    for panel in board["panels"]:
        repeats = [{panel["repeat"]: value} for value in checks] if panel.get("repeat") else [{}]
        for repeat in repeats:
            for target in panel.get("targets", []):
                expr = substitute(target["expr"], {**variables, **repeat})
                queries.append((substitute(panel["title"], repeat), expr))
    return queries


def variables_for(
    prometheus: PrometheusServer, board: dict[str, Any], namespace: str, range_seconds: int
) -> tuple[dict[str, str], list[str]]:
    """The variables as a person picking ``namespace`` (and the first of everything else)
    would set them, each value one the variable's own query lists; and the checks listed."""
    templating = {v["name"]: v for v in board["templating"]["list"]}
    variables = {"__rate_interval": RATE_INTERVAL, "__range": f"{range_seconds}s"}
    for name in ("namespace", "name", "model"):
        values = label_values(prometheus, templating[name]["query"]["query"], variables)
        assert values, f"variable {name} lists nothing"
        variables[name] = namespace if name == "namespace" else values[0]
        assert variables[name] in values, (name, values)
    checks = label_values(prometheus, templating["check"]["query"]["query"], variables)
    return variables, checks


def without_numbers(prometheus: PrometheusServer, queries: list[tuple[str, str]]) -> list[str]:
    """The queries that return nothing, or only NaN (a panel Grafana draws empty)."""
    empty = []
    for title, expr in queries:
        values = [float(row["value"][1]) for row in prometheus.query(expr)]
        if not [v for v in values if not math.isnan(v)]:
            empty.append(f"{title}: {expr} -> {values}")
    return empty
