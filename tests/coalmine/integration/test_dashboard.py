"""``kubectl coalmine dashboard`` on a real rollout: real API server, operator, model servers,
Prometheus; the dashboard as its own process (real uvicorn), read over HTTP and in Chromium."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import Any

import pytest

from e2e.devcluster.dashboardprocess import (
    DashboardProcess,
    charted,
    check_shows_value_and_limit,
    judged,
    rendered_dom,
    rendered_dom_when,
    screenshot,
    text_of,
)
from e2e.devcluster.sandbox import Sandbox, wait_for
from e2e.devcluster.specs import spec
from e2e.devcluster.tinymodels import ModelArtifacts

pytestmark = pytest.mark.integration

SCRIPT = '<script>document.title="owned"</script><img src=x id=owned>'
CHANGE_CAUSE = "v2: the same model with 20% injected server errors"
SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "img" / "dashboard.png"
UPDATE_DOCS = os.environ.get("COALMINE_UPDATE_DOCS") == "1"


def _deploy_v1(h: Sandbox, models: ModelArtifacts) -> None:
    h.apply(spec(models.model("v1"), prometheus=h.prometheus.url))
    h.wait_status(lambda s: s.get("phase") == "Healthy", 90, "v1 to serve")
    h.start_traffic()


SLOW_STEPS = [{"weight": 20, "pause": "20s"}, {"weight": 50, "pause": "10s"}]
"""Long enough to look at the canary while it runs, on a machine busy with other tests."""


def test_json_during_and_after_a_promotion(harness: Sandbox, models: ModelArtifacts) -> None:
    h = harness
    _deploy_v1(h, models)
    with DashboardProcess(h.plane.kubeconfig, h.workdir) as board:
        h.apply(spec(models.model("v2"), steps=SLOW_STEPS, prometheus=h.prometheus.url))

        def taking_traffic() -> dict[str, Any] | None:
            row = board.row(h.ns, "iris")
            return row if row and row["phase"] == "Progressing" and row["weight"] > 0 else None

        row = wait_for(taking_traffic, 90, "the list to show the canary taking traffic")
        assert row["canary"]["version"] == "v2" and row["stable"]["version"] == "v1"
        assert re.fullmatch(r"[12]/2", row["step"])
        # During: the steps, the operator's checks, and Prometheus' numbers for the canary.
        during = board.detail_when(h.ns, "iris",
            lambda d: d["phase"] == "Progressing" and d["analysis"] and charted(d, "error-rate"),
            "the canary's error rate charted from Prometheus",
        )  # fmt: skip
        assert "current" in [s["state"] for s in during["steps"]]
        assert [s["weight"] for s in during["steps"]] == [20, 50]
        checks = {c["name"]: c for c in during["analysis"]["checks"]}
        assert checks["error-rate"]["limit"] == {"op": "<=", "value": 0.05}
        assert "0.05" in checks["error-rate"]["threshold"]
        assert checks["latency-p99"]["limit"] == {"op": "<=", "value": 1.0}
        series = during["checkSeries"]
        assert series["prometheus"] == h.prometheus.url and series["error"] is None
        assert series["canary"]["version"] == "v2"
        assert all(0.0 <= v <= 0.05 for v in charted(during, "error-rate"))  # a good version
        # After: promoted; the decision, every step passed, the weight it went through. A bound,
        # not a target: the second step's canary pods and stable's v2 pods both start on the
        # way, and a loaded CI machine took 46 s for one of those (120 s timed out there).
        h.wait_status(
            lambda s: s.get("phase") == "Healthy" and s.get("stable", {}).get("version") == "v2",
            240, "v2 to be promoted",
        )  # fmt: skip
        after = board.detail_when(h.ns, "iris", lambda d: d["phase"] == "Healthy", "Healthy")
        assert after["decision"]["kind"] == "promotion"
        assert after["decision"]["version"] == "v2"
        assert {s["state"] for s in after["steps"]} == {"passed"}
        weights = [p["weight"] for p in after["weightSeries"]]
        assert {20, 50} <= set(weights), weights
        # The rollout's charts stay after the canary is gone (the dashboard saw it run).
        assert after["checkSeries"]["canary"]["version"] == "v2"
        assert charted(after, "error-rate") and charted(after, "latency-p99")
        # The list is polled every second: it shows the promotion by its next poll.
        wait_for(
            lambda: ((board.row(h.ns, "iris") or {}).get("lastDecision") or {}).get("outcome")
            == "Promoted",
            10, "the list to show the promotion",
        )  # fmt: skip
        # Unknown objects are 4xx, never 500; nothing can be written.
        assert "not found" in board.json(f"/api/deployments/{h.ns}/nope", 404)["error"]
        assert board.json("/api/deployments/Not_A_Name/iris", 400)["error"]
        assert board.http.post(f"/api/deployments/{h.ns}/iris").status_code == 405


def test_chromium_shows_the_rollout_during_and_after_a_rollback(
    harness: Sandbox, models: ModelArtifacts, tmp_path: Path
) -> None:
    h = harness
    _deploy_v1(h, models)
    bad = spec(
        models.model("v2"),
        env={"COALMINE_SERVING_FAULT_ERROR_RATE": "0.2"},
        prometheus=h.prometheus.url,
        # Fails for 30s or more before rolling back (time to look), and a slow first scrape on
        # a busy machine does not pause it as inconclusive.
        policy={"failureLimit": 15, "inconclusiveLimit": "60s"},
    )
    h.apply(bad, annotations={"kubernetes.io/change-cause": SCRIPT})
    with DashboardProcess(h.plane.kubeconfig, h.workdir) as board:
        board.detail_when(h.ns, "iris",
            lambda d: d["phase"] == "Progressing" and judged(d, "error-rate")
            and charted(d, "error-rate"),
            "the failing canary to be judged on its error rate",
        )  # fmt: skip
        during = rendered_dom_when(
            board.page_url(h.ns, "iris"),
            lambda dom: check_shows_value_and_limit(dom, "error-rate", "0.05"),
            "the page to show the error rate's value and threshold",
        )
        assert text_of(during, r'<span[^>]*id="phase"[^>]*>.*?</span>').strip() == "Progressing"
        row = text_of(during, rf'<tr[^>]*data-namespace="{h.ns}" data-name="iris".*?</tr>')
        assert h.ns in row and "Progressing" in row and "v2" in row
        overview = text_of(during, r'<div[^>]*id="overview".*?</dl>')
        assert re.search(r"Weight\s+(20|50)%", overview), overview
        check = text_of(during, r'<tr data-check="error-rate">.*?</tr>')
        assert "0.05" in check and re.search(r"\d\.\d+", check), check  # value and threshold
        assert 'data-chart="error-rate"' in during and 'class="limit"' in during
        # What the cluster said is text on the page, not markup.
        assert html.escape(SCRIPT, quote=False) in during
        assert 'id="owned"' not in during and "owned</title>" not in during
        h.wait_status(lambda s: s.get("phase") == "Degraded", 120, "v2 to be rolled back")
        board.detail_when(h.ns, "iris", lambda d: d["phase"] == "Degraded", "Degraded")
        after = rendered_dom(board.page_url(h.ns, "iris"))
        assert text_of(after, r'<span[^>]*id="phase"[^>]*>.*?</span>').strip() == "Degraded"
        decision = text_of(after, r'<div[^>]*id="decision".*?</dl>')
        assert "rollback (RolledBack)" in decision and "v2" in decision, decision
        assert re.search(r"error-rate = 0\.\d+.*threshold <= 0\.05", decision), decision
        assert 'data-state="pending"' in after  # no step passed
        # The picture in the README says why v2 was applied, in words rather than markup.
        h.apply(bad, annotations={"kubernetes.io/change-cause": CHANGE_CAUSE})
        board.detail_when(h.ns, "iris", lambda d: d["changeCause"] == CHANGE_CAUSE, "the new cause")
        picture = SCREENSHOT if UPDATE_DOCS else tmp_path / "dashboard.png"
        screenshot(board.page_url(h.ns, "iris"), picture)
