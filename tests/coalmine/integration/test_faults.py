"""Failure scenarios of anchors-reliability.md §6 on real components (docs/failures.md).

The fault proxies (e2e.devcluster.faultproxy) are real processes on loopback in front of the
real Prometheus and the real kube-apiserver; the operator reaches them only through the proxy
(its Prometheus endpoint, its kubeconfig's ``server``). Each test checks "nothing lost"
(tests/coalmine/integration/nothing_lost.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.devcluster.faultcontrol import Fault, FaultProxy
from e2e.devcluster.sandbox import MD_PATH, Sandbox, wait_for
from e2e.devcluster.specs import spec
from e2e.devcluster.tinymodels import ModelArtifacts
from tests.coalmine.integration.nothing_lost import (
    condition,
    decisions_have_one_event_each,
    holds_for,
    no_duplicate_or_orphan_children,
    stable_served_everything,
    weight_never_rose,
)

pytestmark = pytest.mark.integration

QUERY = "/api/v1/query"


def _serve_v1(h: Sandbox, models: ModelArtifacts, prometheus: str) -> dict[str, Any]:
    h.apply(spec(models.model("v1"), prometheus=prometheus))
    status = h.wait_status(lambda s: s.get("phase") == "Healthy", 90, "v1 to serve")
    h.start_traffic()
    return status


def _promoted(h: Sandbox, version: str, timeout: float = 240) -> dict[str, Any]:
    return h.wait_status(
        lambda s: s.get("phase") == "Healthy" and s.get("stable", {}).get("version") == version,
        timeout, f"{version} to be promoted",
    )  # fmt: skip


def _as_uninterrupted(h: Sandbox, done: dict[str, Any], version: str) -> None:
    """(c): the fields an uninterrupted promotion ends with."""
    assert done["stable"]["version"] == version and done["weight"] == 0
    assert done["history"][-1]["outcome"] == "Promoted"
    assert done["observedGeneration"] == h.md()["metadata"]["generation"]


@pytest.fixture
def prometheus_proxy(harness: Sandbox, tmp_path: Path) -> Iterator[FaultProxy]:
    """The operator's only Prometheus endpoint is the proxy."""
    with FaultProxy.for_prometheus(harness.prometheus.url, tmp_path) as proxy:
        harness.operator_env["COALMINE_DEFAULT_PROMETHEUS_ADDRESS"] = proxy.url
        harness.kill_operator()
        harness.start_operator()
        yield proxy


def _provider_error(s: dict[str, Any]) -> str | None:
    failing = [c for c in (s.get("analysis") or {}).get("checks", []) if c.get("providerError")]
    return failing[0].get("reason") if failing else None


PROMETHEUS_FAULTS = [
    (Fault("500", path=QUERY), "Prometheus answered HTTP 500"),
    (Fault("truncate", path=QUERY), "Prometheus"),
    (Fault("hang", path=QUERY), "Prometheus did not answer in time"),
]


def test_prometheus_500_truncated_and_hung_queries_flap_without_a_decision(
    harness: Sandbox, models: ModelArtifacts, prometheus_proxy: FaultProxy
):
    """Scenarios 2, 3 and 6: each fault is a provider error (AnalysisError), never a pass or
    a failure; a good measurement between bursts resets the error clock, so three bursts
    longer together than providerErrorLimit (12 s) roll nothing back; then v2 is promoted."""
    h, proxy = harness, prometheus_proxy
    v1 = _serve_v1(h, models, proxy.url)
    h.apply(spec(
        models.model("v2"),
        # The first step outlasts the three bursts (20-30 s on a loaded machine), so no step
        # can advance inside one for a reason other than a fault's.
        steps=[{"weight": 20, "pause": "60s"}, {"weight": 50, "pause": "2s"}],
        policy={"providerErrorLimit": "12s", "onInconclusive": "rollback"},
        prometheus=proxy.url,
    ))  # fmt: skip
    h.wait_status(lambda s: s.get("analysis") and s.get("weight", 0) > 0, 90, "analysis")
    reasons = []
    for fault, reason in PROMETHEUS_FAULTS:
        began = len(h.recorder.snapshots)
        proxy.inject(fault)
        down = h.wait_status(lambda s: _provider_error(s) is not None, 20, f"{fault.fault}")
        reasons.append(_provider_error(down))
        assert reason in (_provider_error(down) or ""), down["analysis"]
        assert condition(down, "AnalysisError")["status"] == "True"
        assert down["analysis"]["verdict"] == "inconclusive"
        holds_for(
            lambda: h.status().get("phase") == "Progressing", 3.0, f"{fault.fault}: no decision"
        )
        proxy.clear()
        during = h.recorder.snapshots[began:]
        weight_never_rose(during)
        assert all(s.stable_revision == v1["stable"]["revision"] for s in during)
        h.wait_status(
            lambda s: _provider_error(s) is None and not s["analysis"].get("providerErrorSince"),
            20, "a good measurement to reset the error clock",
        )  # fmt: skip
    print(f"provider errors seen: {reasons}")
    done = _promoted(h, "v2")
    _as_uninterrupted(h, done, "v2")
    stable_served_everything(h)
    no_duplicate_or_orphan_children(h)
    decisions_have_one_event_each(h, done)


@pytest.fixture
def api_proxy(harness: Sandbox, tmp_path: Path) -> Iterator[FaultProxy]:
    """The operator's kubeconfig names the proxy: every API call and watch goes through it."""
    with FaultProxy.for_apiserver(harness.plane, tmp_path) as proxy:
        harness.operator_kubeconfig = proxy.kubeconfig_through(harness.service_account_kubeconfig)
        # The chart's Lease timing, not the sandbox's 4/3/1 s: the Lease is read through the
        # proxy too, and a burst of failed reads shorter than the renew deadline (8 s) must
        # not cost the leader its Lease (with 3 s, a 3 s burst did: it stepped down and exited).
        harness.operator_env.update({
            "COALMINE_LEASE_DURATION_SECONDS": "12",
            "COALMINE_RENEW_DEADLINE_SECONDS": "8",
            "COALMINE_RETRY_PERIOD_SECONDS": "2",
        })  # fmt: skip
        harness.kill_operator()
        harness.start_operator()
        yield proxy


def _wait_for_a_lease_renewal(h: Sandbox) -> None:
    path = f"/apis/coordination.k8s.io/v1/namespaces/{h.ns}/leases/coalmine-operator"
    before = h.api.get(path).json()["spec"]["renewTime"]
    wait_for(lambda: h.api.get(path).json()["spec"]["renewTime"] != before, 15, "a Lease renewal")


API_BURSTS = [  # (what, fault, seconds): one after the other, mid-step
    ("429 on every write", Fault("429", method="PATCH"), 4.0),
    ("500 on every read", Fault("500", method="GET", watch=False), 3.0),
    ("truncated reads", Fault("truncate", method="GET", watch=False), 3.0),
    ("slow answers", Fault("slow", seconds=1.0), 3.0),
]


def test_api_server_429_500_truncated_slow_and_dropped_watches_lose_nothing(
    harness: Sandbox, models: ModelArtifacts, api_proxy: FaultProxy
):
    """Scenario 15: the operator backs off and carries on; a watch cut every 2 s still
    delivers the new spec (it reconnects); the rollout ends as an uninterrupted one."""
    h, proxy = harness, api_proxy
    v1 = _serve_v1(h, models, h.prometheus.url)
    assert proxy.stats()["forwarded"] > 0  # v1 was deployed through the proxy
    proxy.inject(Fault("drop", watch=True, seconds=2.0))
    h.apply(
        spec(
            models.model("v2"),
            steps=[{"weight": 20, "pause": "75s"}, {"weight": 50, "pause": "2s"}],
            prometheus=h.prometheus.url,
        )
    )  # fmt: skip  (the bursts all fall inside the first step's pause)
    h.wait_status(lambda s: s.get("weight", 0) > 0, 180, "v2 seen through dropped watches")
    assert proxy.hits() > 0, "no watch was dropped"
    rates = {}
    for what, fault, seconds in API_BURSTS:
        began = len(h.recorder.snapshots)
        proxy.inject(fault)
        wait_for(lambda: proxy.hits() > 0, 10, f"{what} to be injected")
        frozen = h.status()
        holds_for(
            lambda: h.status()["stable"]["revision"] == v1["stable"]["revision"],
            seconds, f"{what}: stable kept",
        )  # fmt: skip
        rates[what] = round(proxy.hits() / seconds, 1)
        weight_never_rose(h.recorder.snapshots[began:])
        if fault.fault == "429":  # nothing could be written: status is as it was
            assert h.status() == frozen
        # A pause between bursts, as between real outages: the leader renews its Lease (read
        # through the proxy too) before the next burst, so the bursts together never outlast
        # its renew deadline.
        proxy.clear()
        _wait_for_a_lease_renewal(h)
    print(f"faulted requests per second: {rates}")
    assert rates["429 on every write"] <= 20, rates  # backoff, not a retry storm
    proxy.clear()
    done = _promoted(h, "v2")  # the rest of the 75 s pause, step 2, stable's roll
    weights = {s.weight for s in h.recorder.snapshots if s.weight is not None}
    assert weights <= {0, 20, 50}, weights
    _as_uninterrupted(h, done, "v2")
    stable_served_everything(h)
    no_duplicate_or_orphan_children(h)
    decisions_have_one_event_each(h, done)
    by_reason: dict[str, int] = {}
    for event in h.events():
        by_reason[event["reason"]] = by_reason.get(event["reason"], 0) + (event.get("count") or 1)
    print(f"events by reason: {by_reason}")
    assert sum(by_reason.values()) <= 30, by_reason  # bounded: no Event per failed call


def test_edits_and_a_delete_while_the_operator_is_down(harness: Sandbox, models: ModelArtifacts):
    """Scenarios 10 and 12: two spec edits while the operator is down: only the latest is
    acted on; then deleted while down: it goes at once (no finalizer: the operator has
    nothing to clean up), the garbage collector takes the children, and the operator, back,
    brings nothing back."""
    h = harness
    v1 = _serve_v1(h, models, h.prometheus.url)
    h.kill_operator()
    h.apply(spec(models.model("v2"), prometheus=h.prometheus.url))
    h.apply(spec(models.model("v3"), prometheus=h.prometheus.url))
    generation = h.md()["metadata"]["generation"]
    h.start_operator()
    canary = h.wait_status(lambda s: s.get("weight", 0) > 0, 180, "the canary to take traffic")
    assert canary["canary"]["version"] == "v3" and canary["observedGeneration"] == generation
    assert all((s.status.get("canary") or {}).get("version") != "v2" for s in h.recorder.snapshots)
    # One canary template ever (a ReplicaSet per template): v3's, never v2's.
    canary_sets = h.api.get(
        f"/apis/apps/v1/namespaces/{h.ns}/replicasets",
        params={"labelSelector": "coalmine.dev/variant=canary"},
    ).json()["items"]
    versions = [r["spec"]["template"]["metadata"]["labels"]["coalmine.dev/version"]
                for r in canary_sets]  # fmt: skip
    assert versions == ["v3"], versions
    assert canary["stable"]["revision"] == v1["stable"]["revision"]
    no_duplicate_or_orphan_children(h)

    stable_served_everything(h)  # (a) through both restarts
    h.traffic.stop()  # type: ignore[union-attr]

    h.kill_operator()
    h.delete()
    gone = f"{MD_PATH.format(ns=h.ns)}/{h.name}"
    # No finalizer (the operator has nothing to clean up): the object goes at once, and the
    # garbage collector takes its children while the operator is still down.
    wait_for(lambda: h.api.get(gone).status_code == 404, 30, "the object to be gone")
    wait_for(lambda: not h.deployments() and not h.services(), 60, "the children to be collected")
    h.start_operator()
    holds_for(
        lambda: not h.deployments() and not h.services(),
        5.0, "nothing to come back once the operator is up again",
    )  # fmt: skip
