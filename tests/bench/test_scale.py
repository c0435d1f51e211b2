"""B9's harness at a small size, on the real control plane and Prometheus: the properties that
must hold on any machine (no timings): a steady ModelDeployment is never written, costs at
most one API read a minute, and an operator with nothing to do logs nothing; the canaries are
analysed (Prometheus is queried), and a canary paused in its step writes its status only."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scale import run
from bench.scalemeasure import histogram_quantile


@pytest.mark.integration
def test_steady_objects_cost_no_write_no_log_line_and_at_most_one_read_a_minute(tmp_path: Path):
    steady, canary = run(objects=6, canaries=2, window=30, settle=8, workdir=tmp_path)
    for window in (steady, canary):
        assert window.writes_on_steady_objects == 0, window
        assert window.events_on_steady_objects == 0, window
        assert window.api_reads_per_steady_object_min <= 1.0, window
        assert window.peer_rss_mb > 0 and window.operator_rss_mb > 0
    assert steady.log_lines_per_min == 0, "a tick that changed nothing logged a line"
    assert steady.api_writes_per_object_min == 0
    # The canaries are analysed from Prometheus and move their children: the counters see it.
    assert canary.prometheus_queries_per_canary_min > 0
    assert canary.ticks_per_min > 0
    assert canary.operator_requests, "the audit log saw none of the operator's requests"
    # A canary paused in its step changes no child: its ticks re-apply nothing (an apply the
    # watch-backed store shows would change nothing is not sent), they only write status.
    assert canary.operator_requests.get("patch modeldeployments/status", 0) > 0, canary
    children = {"patch deployments", "patch services", "patch httproutes"}
    assert not children & set(canary.operator_requests), canary.operator_requests


def test_quantiles_of_a_cumulative_histogram():
    buckets = {0.1: 50.0, 1.0: 99.0, 5.0: 100.0, float("inf"): 100.0}
    assert histogram_quantile(buckets, 0.5) == pytest.approx(0.1)
    assert 1.0 < histogram_quantile(buckets, 0.995) <= 5.0
    assert histogram_quantile({1.0: 0.0, float("inf"): 1.0}, 0.99) == float("inf")
