"""The operator on a real API server, with real Prometheus and real model servers.

The kubelet is a stand-in (see e2e.devcluster.standin); everything else is the real thing.
"""

from __future__ import annotations

import httpx
import pytest

from e2e.devcluster.sandbox import Sandbox, wait_for
from e2e.devcluster.specs import spec
from e2e.devcluster.tinymodels import ModelArtifacts
from tests.coalmine.integration.nothing_lost import (
    decisions_have_one_event_each,
    no_duplicate_or_orphan_children,
    stable_served_everything,
    weight_never_rose,
)
from tests.coalmine.integration.status_page import as_documented, check_doc_pages, plugin_page

pytestmark = pytest.mark.integration


def _deploy_v1(h: Sandbox, models: ModelArtifacts) -> dict:
    h.apply(spec(models.model("v1"), prometheus=h.prometheus.url))
    status = h.wait_status(lambda s: s.get("phase") == "Healthy", 90, "v1 to serve")
    h.start_traffic()
    return status


def test_good_version_promotes_through_every_step(harness: Sandbox, models: ModelArtifacts):
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
    reasons = [e["reason"] for e in h.events_with("Promoted")]
    assert reasons.count("Promoted") == 1, reasons
    assert h.traffic is not None and h.traffic.sent["canary"] > 0
    # No duplicate children: exactly the two Deployments.
    assert sorted(d["metadata"]["name"] for d in h.deployments()) == ["iris-canary", "iris-stable"]
    # The operator's own liveness endpoint answers: live, and leading.
    health = httpx.get(f"http://127.0.0.1:{h.liveness_port}/healthz", timeout=5)
    assert health.status_code == 200, health.text
    answer = health.json()
    assert {k: answer[k] for k in ("live", "role", "problems")} == {
        "live": True,
        "role": "leader",
        "problems": [],
    }
    assert 0 <= answer["seconds_since_tick"] < 60, answer
    # Deleting the ModelDeployment removes everything it created (ownerReferences + GC).
    h.delete()
    wait_for(lambda: not h.deployments() and not h.services(), 60, "the children to be collected")


def _rollback_order_holds(h: Sandbox) -> None:
    """Traffic left the canary (Service selects stable only) BEFORE its replicas went to 0."""
    started = h.recorder.first(lambda s: s.phase == "RollingBack")
    assert started is not None, [s.phase for s in h.recorder.snapshots]
    off = h.recorder.first(lambda s: s.seq >= started.seq and s.spans_both is False, within=10)
    scaled = h.recorder.first(lambda s: s.seq >= started.seq and s.canary_replicas == 0, within=10)
    assert off is not None and scaled is not None
    assert off.seq < scaled.seq, (off, scaled)


def test_injected_errors_roll_back_with_traffic_off_first(harness: Sandbox, models: ModelArtifacts):
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
    # Load through the whole canary: stable never failed a request, before or after the cut.
    stable_served_everything(h)
    messages = [e["message"] for e in h.events_with("RolledBack") if e["reason"] == "RolledBack"]
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
    # docs/cli.md shows this rollback as `kubectl coalmine status` and `history` print it.
    # (Once settled: the tick after the rollback explains how to retry.)
    h.wait_status(lambda s: "coalmine.dev/retry" in s.get("message", ""), 30, "the retry hint")
    pages = {
        command: as_documented(
            plugin_page(command, "iris", h.ns, h.plane.kubeconfig), h.ns, models.good.path.parent
        )
        for command in ("status", "history")
    }
    check_doc_pages(pages)


def test_no_canary_traffic_holds_and_never_promotes(harness: Sandbox, models: ModelArtifacts):
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


def _progressing_with_traffic(h: Sandbox, timeout: float = 120) -> dict:
    return h.wait_status(
        lambda s: s.get("phase") == "Progressing" and s.get("weight", 0) > 0,
        timeout,
        "the canary to take traffic",
    )


def test_spec_change_mid_rollout_restarts_at_step_zero(harness: Sandbox, models: ModelArtifacts):
    h = harness
    _deploy_v1(h, models)
    h.apply(spec(models.model("v2"), prometheus=h.prometheus.url))
    v2 = _progressing_with_traffic(h)
    changed_at = len(h.recorder.snapshots)
    h.apply(spec(models.model("v3"), prometheus=h.prometheus.url))
    done = h.wait_status(
        lambda s: s.get("phase") == "Healthy" and s.get("stable", {}).get("version") == "v3",
        150,
        "v3 to be promoted",
    )
    after = h.recorder.snapshots[changed_at:]
    first_v3 = next(s for s in after if s.canary_revision == done["stable"]["revision"])
    off = next(s for s in after if s.spans_both is False)
    assert off.seq <= first_v3.seq, "traffic went back to stable before the canary changed"
    # v3 starts at step 0 with no traffic, and gets some only once its own pods are ready. (The
    # v2 pod left beside v3's surging one used to make the canary look ready on v3 at once: the
    # Service spanned both again 120 ms after the drain, a v2 pod answering as v3's canary.)
    assert (first_v3.step, first_v3.weight, first_v3.spans_both) == (0, 0, False), first_v3
    outcomes = {(e["version"], e["outcome"]) for e in done["history"]}
    assert ("v2", "Superseded") in outcomes, done["history"]
    assert v2["canary"]["version"] == "v2"


def test_operator_killed_mid_step_keeps_step_and_pause(harness: Sandbox, models: ModelArtifacts):
    h = harness
    _deploy_v1(h, models)
    h.apply(spec(
        models.model("v2"),
        steps=[{"weight": 20, "pause": "20s"}, {"weight": 50, "pause": "2s"}],
        prometheus=h.prometheus.url,
    ))  # fmt: skip
    before = h.wait_status(
        lambda s: s.get("phase") == "Progressing" and s.get("stepStartedAt") and s.get("weight"),
        120,
        "step 0 to start",
    )
    h.kill_operator()
    h.start_operator()
    resumed = h.wait_status(
        lambda s: (
            s.get("analysis") is not None
            and s["analysis"]["measuredAt"] > before.get("analysis", {}).get("measuredAt", "")
        ),
        60,
        "the restarted operator to measure",
    )
    # The same step, and the same start time: the pause was not restarted by the crash.
    assert resumed["currentStep"] == before["currentStep"] == 0
    assert resumed["stepStartedAt"] == before["stepStartedAt"]
    done = h.wait_status(
        lambda s: s.get("phase") == "Healthy" and s.get("stable", {}).get("version") == "v2",
        120,
        "v2 to be promoted after the restart",
    )
    assert done["stable"]["version"] == "v2"
    assert sorted(d["metadata"]["name"] for d in h.deployments()) == ["iris-canary", "iris-stable"]


def test_operator_killed_mid_rollback_completes_it(harness: Sandbox, models: ModelArtifacts):
    h = harness
    _deploy_v1(h, models)
    bad = spec(
        models.model("v2"),
        env={"COALMINE_SERVING_FAULT_ERROR_RATE": "0.3"},
        prometheus=h.prometheus.url,
    )
    bad["rollback"] = {"scaleDownDelay": "8s"}
    h.apply(bad)
    h.wait_status(lambda s: s.get("phase") == "RollingBack", 120, "the rollback to start")
    h.kill_operator()
    h.start_operator()
    done = h.wait_status(lambda s: s.get("phase") == "Degraded", 60, "the rollback to finish")
    assert done["rollback"]["stage"] == "Done"
    canary = h.deployment("canary")
    assert canary is not None and canary["spec"]["replicas"] == 0
    _rollback_order_holds(h)
    # Nothing lost across the crash: the weight never rose once the rollback began, the
    # canary never took traffic again after it was cut, and RolledBack was announced once.
    started = h.recorder.first(lambda s: s.phase == "RollingBack")
    assert started is not None
    since = [s for s in h.recorder.snapshots if s.seq >= started.seq]
    weight_never_rose(since)
    off = next(i for i, s in enumerate(since) if s.spans_both is False)
    assert all(s.spans_both is False for s in since[off:]), [s.spans_both for s in since]
    decisions_have_one_event_each(h, done)
    stable_served_everything(h)
    no_duplicate_or_orphan_children(h)


def _condition(status: dict, kind: str) -> dict:
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


def test_prometheus_down_mid_analysis_never_promotes(harness: Sandbox, models: ModelArtifacts):
    h = harness
    v1 = _deploy_v1(h, models)
    h.apply(spec(
        models.model("v2"),
        steps=[{"weight": 20, "pause": "4s"}],
        policy={"inconclusiveLimit": "5m"},
        prometheus=h.prometheus.url,
    ))  # fmt: skip
    h.wait_status(
        lambda s: s.get("analysis") is not None and s.get("weight", 0) > 0, 120, "analysis"
    )
    h.prometheus.stop()
    down = h.wait_status(
        lambda s: any(
            c.get("providerError") and "unreachable" in (c.get("reason") or "")
            for c in (s.get("analysis") or {}).get("checks", [])
        ),
        60,
        "the provider error to be recorded",
    )
    assert down["analysis"]["verdict"] == "inconclusive"
    assert _condition(down, "AnalysisError")["status"] == "True"
    assert _condition(down, "Analysis")["reason"] == "ProviderError"
    stopped_at = len(h.recorder.snapshots)
    seen = {down["analysis"]["measuredAt"]}

    def measured_again(s: dict) -> bool:  # several analysis intervals with Prometheus down
        seen.add(s["analysis"]["measuredAt"])
        return len(seen) >= 4

    h.wait_status(measured_again, 60, "three more measurements with Prometheus down")
    assert all(
        s.stable_revision == v1["stable"]["revision"] for s in h.recorder.snapshots[stopped_at:]
    )
    assert h.status()["phase"] == "Progressing"
    h.prometheus.start()
    done = h.wait_status(
        lambda s: s.get("phase") == "Healthy" and s.get("stable", {}).get("version") == "v2",
        120,
        "v2 to be promoted once Prometheus is back",
    )
    assert done["stable"]["version"] == "v2"


def test_gateway_api_router_moves_route_weights(
    harness: Sandbox, gateway_api: object, models: ModelArtifacts
):
    h = harness
    traffic = {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "edge"}]}}
    h.apply(spec(models.model("v1"), traffic=traffic, prometheus=h.prometheus.url))
    h.wait_status(lambda s: s.get("phase") == "Healthy", 90, "v1 to serve")
    h.start_traffic()
    h.apply(spec(models.model("v2"), traffic=traffic, prometheus=h.prometheus.url))
    done = h.wait_status(
        lambda s: s.get("phase") == "Healthy" and s.get("stable", {}).get("version") == "v2",
        150,
        "v2 to be promoted through the HTTPRoute",
    )
    weights = [s.route_weight for s in h.recorder.snapshots if s.route_weight is not None]
    assert {20, 50} <= set(weights), weights  # exact weights, unlike the replica ratio
    assert weights[-1] == 0 and done["weight"] == 0
    assert h.traffic is not None and h.traffic.sent["canary"] > 0
