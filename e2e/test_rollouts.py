"""The product on a real cluster: the operator, installed by our Helm chart, rolls model
versions out on real pods behind a real Service, analysed by a real Prometheus, under real
client traffic (issue 7, scenarios 1-3 and 5; scenario 4, the quality gate, is in
test_model_gates.py with the other model gates).
"""

from __future__ import annotations

from typing import Any

import pytest

from e2e.devcluster.product import OPERATOR_NAMESPACE
from e2e.devcluster.servicetraffic import SteadyTraffic
from e2e.support.kube import Kube, eventually
from e2e.support.rollout import (
    NAME,
    World,
    given_v1_serving,
    kubectl_coalmine,
    wait_status,
)

pytestmark = pytest.mark.e2e


def test_v1_becomes_available_and_serves_through_its_service(world: World, ns: str) -> None:
    # Given the operator installed by helm, When a ModelDeployment v1 is applied
    status = given_v1_serving(world, ns)
    # Then it is Available, and real requests through its Service get v1's predictions
    conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
    assert conditions.get("Ready") == "True", status  # "Available": Ready and serving
    traffic = SteadyTraffic(world.kube.service_url(ns, NAME), NAME, rps=20).start()
    try:
        world.product.prometheus.wait_for(
            f'sum(coalmine_requests_total{{namespace="{ns}",outcome="success"}}) >= 20', 60
        )
    finally:
        traffic.stop()
    assert traffic.failures == 0, (traffic.statuses, traffic.errors)
    assert set(traffic.by_version) == {"v1"}, traffic.by_version


def test_good_v2_promotes_under_steady_traffic_without_a_failed_request(
    world: World, ns: str
) -> None:
    # Given v1 serving steady client traffic
    v1 = given_v1_serving(world, ns)
    traffic = SteadyTraffic(world.kube.service_url(ns, NAME), NAME).start()
    try:
        # When a good v2 is applied
        world.apply_version(ns, "v2")
        # Then it promotes through the steps
        done = wait_status(
            world.kube, ns, NAME,
            lambda s: s.get("phase") == "Healthy" and s.get("stable", {}).get("version") == "v2",
            420, "v2 to be promoted",
        )  # fmt: skip
    finally:
        traffic.stop()
    assert done["stable"]["revision"] != v1["stable"]["revision"]
    assert world.events(ns, "Promoted"), world.kube.events(ns)
    # And no client request failed during the whole rollout; both versions answered
    assert traffic.failures == 0, (traffic.statuses, traffic.errors)
    assert traffic.by_version["v1"] > 0 and traffic.by_version["v2"] > 0, traffic.by_version


def test_v3_with_injected_errors_rolls_back_and_says_why(world: World, ns: str) -> None:
    # Given v1 serving steady client traffic
    v1 = given_v1_serving(world, ns)
    traffic = SteadyTraffic(world.kube.service_url(ns, NAME), NAME).start()
    try:
        # When v3 fails a fifth of its requests
        world.apply_version(ns, "v3", env={"COALMINE_SERVING_FAULT_ERROR_RATE": "0.2"})
        # Then it is rolled back automatically
        done = wait_status(world.kube, ns, NAME, lambda s: s.get("phase") == "Degraded", 420,
                           "v3 to be rolled back")  # fmt: skip
        traffic.statuses.clear()
        traffic.by_version.clear()
        # And client traffic is back on stable v1 only
        _wait_requests(traffic, 30)
    finally:
        traffic.stop()
    assert done["stable"]["revision"] == v1["stable"]["revision"]
    assert set(traffic.by_version) == {"v1"} and traffic.failures == 0, traffic.statuses
    # And the status and the Event explain why, with numbers
    record = done["rollback"]
    assert record["check"] == "error-rate" and 0.05 < record["value"] <= 0.6, record
    messages = world.events(ns, "RolledBack")
    assert any("error-rate" in m and "0.05" in m for m in messages), world.kube.events(ns)
    # And so does `kubectl coalmine status`, run through the real kubectl's plugin lookup
    page = kubectl_coalmine(world.kube_config, "status", NAME, "-n", ns)
    assert "Phase:      Degraded" in page and "Rollback: v3" in page, page
    assert "Check:    error-rate = 0." in page and "threshold <= 0.05" in page, page


def _wait_requests(traffic: SteadyTraffic, count: int) -> None:
    eventually(lambda: True if sum(traffic.statuses.values()) >= count else None,
               timeout=60, what=f"{count} client requests")  # fmt: skip


def test_a_new_operator_pod_continues_the_rollout_where_the_old_one_was(
    world: World, ns: str
) -> None:
    # Given a good v2 rolling out under traffic, past its first step
    given_v1_serving(world, ns)
    traffic = SteadyTraffic(world.kube.service_url(ns, NAME), NAME).start()
    try:
        world.apply_version(ns, "v2")
        before = wait_status(
            world.kube, ns, NAME,
            lambda s: s.get("phase") == "Progressing" and (s.get("currentStep") or 0) >= 1,
            300, "v2 to reach step 1",
        )  # fmt: skip
        # When the operator's pod is deleted mid-rollout
        _delete_operator_pod(world.kube)
        # Then the new pod continues from there: same canary, no step revisited, promoted
        seen: list[dict[str, Any]] = []

        def promoted(status: dict[str, Any]) -> bool:
            seen.append(status)
            return bool(status.get("stable", {}).get("version") == "v2")

        wait_status(world.kube, ns, NAME, promoted, 420, "v2 to be promoted after the restart")
    finally:
        traffic.stop()
    canary = before["canary"]["revision"]
    during = [s for s in seen if s.get("phase") == "Progressing"]
    assert all(s["canary"]["revision"] == canary for s in during), during
    assert all((s.get("currentStep") or 0) >= before["currentStep"] for s in during), during
    assert traffic.failures == 0, (traffic.statuses, traffic.errors)


def _delete_operator_pod(kube: Kube) -> None:
    selector = "app.kubernetes.io/component=operator"
    pods = kube.list_objects("v1", "Pod", OPERATOR_NAMESPACE, selector)
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    old = pods[0]["metadata"]["name"]
    kube.delete("v1", "Pod", old, OPERATOR_NAMESPACE)
    eventually(
        lambda: True if [p for p in kube.ready_pods(OPERATOR_NAMESPACE, selector)
                         if p.name != old] else None,
        timeout=180, what="a new operator pod to be Ready",
    )  # fmt: skip
