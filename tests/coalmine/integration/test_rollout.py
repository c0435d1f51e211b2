"""The operator on a real API server, with real Prometheus and real model servers.

The kubelet is a stand-in (see kubelet_standin.py); everything else is the real thing.
"""

from __future__ import annotations

import pytest

from tests.coalmine.integration.harness import Harness
from tests.coalmine.integration.models import ModelArtifacts
from tests.coalmine.integration.specs import spec

pytestmark = pytest.mark.integration


def _deploy_v1(h: Harness, models: ModelArtifacts) -> dict:
    h.apply(spec(models.model("v1"), prometheus=h.prometheus.url))
    status = h.wait_status(lambda s: s.get("phase") == "Healthy", 90, "v1 to serve")
    h.start_traffic()
    return status


def test_good_version_promotes_through_every_step(harness: Harness, models: ModelArtifacts):
    h = harness
    v1 = _deploy_v1(h, models)
    h.apply(spec(models.model("v2"), prometheus=h.prometheus.url))
    done = h.wait_status(
        lambda s: s.get("phase") == "Healthy" and s.get("stable", {}).get("version") == "v2",
        120,
        "v2 to be promoted",
    )
    assert done["stable"]["revision"] != v1["stable"]["revision"]
    steps_seen = {s.step for s in h.recorder.snapshots if s.phase == "Progressing"}
    assert {0, 1} <= steps_seen
    stable = h.deployment("stable")
    assert stable is not None
    assert stable["metadata"]["labels"]["coalmine.dev/version"] == "v2"
    reasons = [e["reason"] for e in h.events()]
    assert "Promoted" in reasons or any("Promot" in r for r in reasons), reasons
    assert h.traffic is not None and h.traffic.sent["canary"] > 0
    # No duplicate children: exactly the two Deployments.
    assert sorted(d["metadata"]["name"] for d in h.deployments()) == ["iris-canary", "iris-stable"]


def _rollback_order_holds(h: Harness) -> None:
    """Traffic left the canary (Service selects stable only) BEFORE its replicas went to 0."""
    started = h.recorder.first(lambda s: s.phase == "RollingBack")
    assert started is not None, [s.phase for s in h.recorder.snapshots]
    off = h.recorder.first(lambda s: s.seq >= started.seq and s.spans_both is False)
    scaled = h.recorder.first(lambda s: s.seq >= started.seq and s.canary_replicas == 0)
    assert off is not None and scaled is not None
    assert off.seq < scaled.seq, (off, scaled)


def test_injected_errors_roll_back_with_traffic_off_first(harness: Harness, models: ModelArtifacts):
    h = harness
    v1 = _deploy_v1(h, models)
    bad = spec(
        models.model("v2"),
        env={"COALMINE_SERVING_FAULT_ERROR_RATE": "0.2"},
        prometheus=h.prometheus.url,
    )
    h.apply(bad)
    done = h.wait_status(lambda s: s.get("phase") == "Degraded", 120, "v2 to be rolled back")
    assert done["stable"]["revision"] == v1["stable"]["revision"]
    record = done["rollback"]
    assert record["stage"] == "Done" and record["check"] == "error-rate"
    assert 0.05 < record["value"] <= 0.5, record  # ~0.2 measured from real traffic
    assert "0.05" in record["threshold"]
    _rollback_order_holds(h)
    messages = [e["message"] for e in h.events() if e["reason"] == "RolledBack"]
    assert any("error-rate" in m and "0.05" in m for m in messages), messages
    canary = h.deployment("canary")
    assert canary is not None and canary["spec"]["replicas"] == 0
    # The canary's runtime (its fault env) never reached a stable pod template.
    stable_sets = h.api.get(
        f"/apis/apps/v1/namespaces/{h.ns}/replicasets",
        params={"labelSelector": "coalmine.dev/variant=stable"},
    ).json()["items"]
    assert len(stable_sets) == 1
    env = stable_sets[0]["spec"]["template"]["spec"]["containers"][0].get("env", [])
    assert all(e["name"] != "COALMINE_SERVING_FAULT_ERROR_RATE" for e in env)


def test_no_canary_traffic_holds_and_never_promotes(harness: Harness, models: ModelArtifacts):
    h = harness
    v1 = _deploy_v1(h, models)
    h.traffic.stop()  # type: ignore[union-attr]
    h.start_traffic(skip_variant="canary")  # clients never reach the canary's pods
    h.apply(spec(models.model("v2"), prometheus=h.prometheus.url))
    paused = h.wait_status(lambda s: s.get("phase") == "Paused", 90, "the policy to pause")
    assert paused["stable"]["revision"] == v1["stable"]["revision"]
    assert paused["analysis"]["verdict"] == "inconclusive"
    assert all(s.phase != "Promoting" for s in h.recorder.snapshots)
    assert all(s.stable_revision in (None, v1["stable"]["revision"]) for s in h.recorder.snapshots)
    assert not [e for e in h.events() if e["reason"] == "Promoted"]


def test_quality_regression_rolls_back_on_feedback(harness: Harness, models: ModelArtifacts):
    h = harness
    _deploy_v1(h, models)
    checks = [
        {"name": "error-rate", "errorRate": {"max": 0.05}},
        {"name": "latency-p99", "latency": {"quantile": 0.99, "maxSeconds": 1.0}},
        {"name": "accuracy", "quality": {"metric": "accuracy", "min": 0.8, "minLabels": 10}},
    ]
    worse = spec(models.model("v2", models.inverted), checks=checks, prometheus=h.prometheus.url)
    h.apply(worse)
    done = h.wait_status(lambda s: s.get("phase") == "Degraded", 120, "v2 to be rolled back")
    assert done["rollback"]["check"] == "accuracy", done["rollback"]
    verdicts = {c["name"]: c["verdict"] for c in done.get("analysis", {}).get("checks", [])}
    assert verdicts.get("error-rate") != "fail" and verdicts.get("latency-p99") != "fail", verdicts
    _rollback_order_holds(h)
