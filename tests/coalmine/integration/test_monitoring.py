"""The chart's Grafana dashboard and alerts against a real Prometheus after real rollouts.

The dashboard: every panel's every query, with the dashboard's own variables resolved the way
Grafana would (its ``label_values`` queries, run on the same Prometheus), returns data after a
promotion. The alerts: the rollback alert's expression is silent before a real rollback and
names the object after it, and the operator-not-ticking one stays silent throughout.

Prometheus scrapes the model servers (as the chart's PodMonitor would) and the operator's own
``/metrics`` (as the operator PodMonitor would); the dashboard and the rules come out of
``helm template``, so what is tested is what ships.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from e2e.devcluster.grafana import RATE_INTERVAL, label_values, panel_queries
from e2e.devcluster.sandbox import Sandbox
from e2e.devcluster.specs import spec
from e2e.devcluster.tinymodels import ModelArtifacts
from tests.charts.helm import Helm, install_helm

pytestmark = pytest.mark.integration


def alert_expressions(tmp_path: Path) -> dict[str, str]:
    values = {"monitoring": {"prometheusRule": {"enabled": True}}}
    objects = Helm(install_helm()).template(values, tmp_path)
    (rule,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    return {r["alert"]: r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]}


def dashboard(tmp_path: Path) -> dict[str, Any]:
    objects = Helm(install_helm()).template(
        {"monitoring": {"dashboard": {"enabled": True}}}, tmp_path
    )
    (config_map,) = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and "grafana_dashboard" in o["metadata"]["labels"]
    ]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"  # the sidecar's label
    (text,) = config_map["data"].values()
    return json.loads(text)  # type: ignore[no-any-return]


def test_every_dashboard_query_returns_data_after_a_rollout(
    harness: Sandbox, models: ModelArtifacts, tmp_path: Path
):
    h = harness
    board = dashboard(tmp_path)
    started = time.monotonic()
    h.apply(spec(models.model("v1"), prometheus=h.prometheus.url))
    h.wait_status(lambda s: s.get("phase") == "Healthy", 90, "v1 to serve")
    h.start_traffic()
    h.apply(spec(models.model("v2"), prometheus=h.prometheus.url))
    h.wait_status(
        lambda s: s.get("phase") == "Healthy" and s.get("stable", {}).get("version") == "v2",
        120,
        "v2 to be promoted",
    )
    # The promotion's count reaches Prometheus within a scrape or two.
    h.prometheus.wait_for(f'coalmine_rollouts_total{{namespace="{h.ns}",result="promoted"}} > 0')

    templating = {v["name"]: v for v in board["templating"]["list"]}
    variables = {"__rate_interval": RATE_INTERVAL}
    variables["__range"] = f"{int(time.monotonic() - started) + 30}s"
    for name in ("namespace", "name", "model"):
        values = label_values(h.prometheus, templating[name]["query"]["query"], variables)
        assert values, f"variable {name} lists nothing"
        variables[name] = h.ns if name == "namespace" else values[0]
        assert variables[name] in values
    assert (variables["name"], variables["model"]) == ("iris", "iris")
    checks = label_values(h.prometheus, templating["check"]["query"]["query"], variables)
    assert checks == ["error-rate", "latency-p99"]

    queries = panel_queries(board, variables, checks)
    assert len(queries) >= 15
    empty = [(title, expr) for title, expr in queries if not h.prometheus.query(expr)]
    assert not empty, f"panels without data: {empty}\ntargets: {h.prometheus.targets_health()}"


def test_a_real_rollback_and_only_it_fires_the_rollback_alert(
    harness: Sandbox, models: ModelArtifacts, tmp_path: Path
):
    h = harness
    alerts = alert_expressions(tmp_path)
    h.apply(spec(models.model("v1"), prometheus=h.prometheus.url))
    h.wait_status(lambda s: s.get("phase") == "Healthy", 90, "v1 to serve")
    h.start_traffic()
    # The object's rollout counters are exported from 0: present, and no rollback yet.
    h.prometheus.wait_for(f'coalmine_rollouts_total{{namespace="{h.ns}",result="rolled_back"}}')
    assert h.prometheus.query(alerts["CoalmineRollback"]) == []
    bad = spec(
        models.model("v2"),
        env={"COALMINE_SERVING_FAULT_ERROR_RATE": "0.2"},
        prometheus=h.prometheus.url,
    )
    h.apply(bad)
    h.wait_status(lambda s: s.get("phase") == "Degraded", 120, "v2 to be rolled back")

    firing = h.prometheus.wait_for(alerts["CoalmineRollback"])
    assert [row["metric"] for row in firing] == [{"namespace": h.ns, "name": "iris"}]
    assert h.prometheus.query(alerts["CoalmineOperatorNotTicking"]) == []
    verdicts = h.prometheus.query('coalmine_verdicts_total{kind="errorRate",verdict="fail"}')
    assert verdicts and float(verdicts[0]["value"][1]) >= 1
