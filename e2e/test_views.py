"""What a person looking at a real rollout sees (issue 17, e2e tier): `kubectl coalmine
dashboard`, a real process pointed at the e2e Prometheus, opened in headless Chromium during
and after a rollback of real pods under real traffic through the Service; then every panel of
the chart's Grafana dashboard, queried on that Prometheus, which scrapes the model pods and
the helm-installed operator's /metrics as the chart's two PodMonitors would.

The integration tier checks the same views against a kubelet stand-in
(tests/coalmine/integration/test_dashboard.py, test_monitoring.py); this is them on a node.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from e2e.devcluster.binaries import kube_bin_dir
from e2e.devcluster.dashboardprocess import (
    DashboardProcess,
    charted,
    check_shows_value_and_limit,
    judged,
    rendered_dom,
    rendered_dom_when,
    text_of,
)
from e2e.devcluster.grafana import panel_queries, shipped_dashboard, variables_for, without_numbers
from e2e.devcluster.servicetraffic import SteadyTraffic
from e2e.support.rollout import NAME, World, given_v1_serving, rolled_back

pytestmark = pytest.mark.e2e

# A long first step and a high failure limit: the failing canary takes traffic for 40 s or
# more before it is rolled back, time to look at it on a machine busy with other work.
SLOW_STEPS = [{"weight": 20, "pause": "120s"}, {"weight": 50, "pause": "60s"}]
PATIENT = {"failureLimit": 20, "inconclusiveLimit": "60s"}
ERRORS = {"COALMINE_SERVING_FAULT_ERROR_RATE": "0.2"}


def test_dashboard_and_grafana_panels_show_a_real_rollback(
    world: World, ns: str, tmp_path: Path
) -> None:
    # Given v1 serving steady client traffic through its Service
    given_v1_serving(world, ns)
    prometheus = world.product.prometheus
    traffic = SteadyTraffic(world.kube.service_url(ns, NAME), NAME).start()
    kubectl = kube_bin_dir() / "kubectl"
    board = DashboardProcess(world.kube_config, tmp_path, "--prometheus", prometheus.url,
                             kubectl=kubectl)  # fmt: skip
    try:
        with board:
            started = time.monotonic()
            # When v3, failing a fifth of its requests, is applied
            world.apply_version(ns, "v3", env=ERRORS, steps=SLOW_STEPS, policy=PATIENT)
            # Then, while it runs, Chromium shows the canary and its failing check
            board.detail_when(
                ns, NAME,
                lambda d: d["phase"] == "Progressing" and judged(d, "error-rate")
                and charted(d, "error-rate"),
                "the failing canary to be measured", timeout=240,
            )  # fmt: skip
            page = rendered_dom_when(
                board.page_url(ns, NAME),
                lambda dom: check_shows_value_and_limit(dom, "error-rate", "0.05"),
                "the page to show the error rate's value and threshold",
            )
            _shows_the_canary(page, ns)
            # And after the rollback, the decision with the check that made it
            rolled_back(world, ns, "v3")
            board.detail_when(ns, NAME, lambda d: d["phase"] == "Degraded", "Degraded")
            _shows_the_rollback(rendered_dom(board.page_url(ns, NAME)))
        # And every Grafana panel has numbers for this rollout, operator panels included
        prometheus.wait_for(f'coalmine_rollouts_total{{namespace="{ns}",result="rolled_back"}} > 0')
        _every_panel_has_numbers(world, ns, int(time.monotonic() - started) + 30)
    finally:
        traffic.stop()


def _shows_the_canary(dom: str, ns: str) -> None:
    assert text_of(dom, r'<span[^>]*id="phase"[^>]*>.*?</span>').strip() == "Progressing"
    row = text_of(dom, rf'<tr[^>]*data-namespace="{ns}" data-name="{NAME}".*?</tr>')
    assert ns in row and "Progressing" in row and "v3" in row, row
    overview = text_of(dom, r'<div[^>]*id="overview".*?</dl>')
    assert re.search(r"Weight\s+20%", overview), overview
    check = text_of(dom, r'<tr data-check="error-rate">.*?</tr>')
    assert "0.05" in check and re.search(r"\d\.\d+", check), check  # value and threshold
    assert 'data-chart="error-rate"' in dom and 'class="limit"' in dom


def _shows_the_rollback(dom: str) -> None:
    assert text_of(dom, r'<span[^>]*id="phase"[^>]*>.*?</span>').strip() == "Degraded"
    decision = text_of(dom, r'<div[^>]*id="decision".*?</dl>')
    assert "rollback (RolledBack)" in decision and "v3" in decision, decision
    assert re.search(r"error-rate = 0\.\d+.*threshold <= 0\.05", decision), decision
    assert 'data-state="pending"' in dom  # no step passed


def _every_panel_has_numbers(world: World, ns: str, range_seconds: int) -> None:
    prometheus = world.product.prometheus
    board = shipped_dashboard()
    variables, checks = variables_for(prometheus, board, ns, range_seconds)
    assert (variables["name"], variables["model"]) == (NAME, "iris"), variables
    assert checks == ["error-rate", "latency-p99"]
    queries = panel_queries(board, variables, checks)
    assert len(queries) >= 15
    empty = without_numbers(prometheus, queries)
    assert not empty, f"panels without numbers: {empty}\ntargets: {prometheus.targets_health()}"
