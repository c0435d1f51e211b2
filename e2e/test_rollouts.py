"""The product on a real cluster: the operator, installed by our Helm chart, rolls model
versions out on real pods behind a real Service, analysed by a real Prometheus, under real
client traffic (issue 7, scenarios 1-3 and 5; scenario 4, the quality gate, is in
test_model_gates.py with the other model gates).
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from e2e.devcluster.product import OPERATOR_NAMESPACE
from e2e.devcluster.servicetraffic import SteadyTraffic
from e2e.support.clusters import ClusterUnderTest
from e2e.support.kube import Kube, eventually
from e2e.support.rollout import (
    NAME,
    World,
    given_v1_serving,
    kubectl_coalmine,
    md_status,
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
    assert world.events_with(ns, "Promoted"), world.kube.events(ns)
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


LEASE = "coalmine"
"""The chart's Lease: its full name, in the release's namespace."""
OPERATOR_PODS = "app.kubernetes.io/component=operator"
LONG_STEP = [{"weight": 20, "pause": "6s"}, {"weight": 50, "pause": "60s"}]
"""Step 1 outlasts the takeover, so the new leader is seen continuing it."""


def test_the_standby_continues_the_rollout_when_the_leader_is_killed(
    world: World, ns: str, cluster: ClusterUnderTest
) -> None:
    # Given the chart's two operator pods, one holding the Lease, and a good v2 rolling out
    # under traffic, in its long second step
    leader = _wait_two_operator_pods_and_a_leader(world.kube)
    given_v1_serving(world, ns, steps=LONG_STEP)
    traffic = SteadyTraffic(world.kube.service_url(ns, NAME), NAME).start()
    try:
        world.apply_version(ns, "v2", steps=LONG_STEP)
        # Step 1 started: its pause runs (it starts when the router is seen at 50%, a tick or
        # more after StepAdvanced; a status between the two has no stepStartedAt).
        before = wait_status(
            world.kube, ns, NAME,
            lambda s: s.get("phase") == "Progressing" and (s.get("currentStep") or 0) == 1
            and bool(s.get("stepStartedAt")),
            300, "v2's step 1 to start",
        )  # fmt: skip
        # When the leader's process is killed, like a node dying: no release, no last write
        killed_at = _kill_the_leader_until_the_standby_leads(world, leader, cluster, "mid-step")
        # Then the standby continues from there: same canary, same step and pause start
        seen: list[dict[str, Any]] = []

        def promoted(status: dict[str, Any]) -> bool:
            seen.append(status)
            return status.get("phase") == "Healthy" and status["stable"]["version"] == "v2"

        wait_status(world.kube, ns, NAME, promoted, 420, "v2 to be promoted after the kill")
    finally:
        traffic.stop()
    # Step 1, not the promotion after it (which is Progressing too, with stable already v2
    # and its own start time in stepStartedAt)
    during = [s for s in seen if s.get("phase") == "Progressing" and not _promoting(s)]
    # Measured after the kill: only the new leader can have written it. Fails when nothing
    # was observed (the old all() passed on an empty list); the step outlasts the takeover.
    by_new_leader = [s for s in during if _measured_at(s) > killed_at]
    assert by_new_leader, f"no status of the new leader's during step 1: {seen}"
    canary = before["canary"]["revision"]
    assert all(s["canary"]["revision"] == canary for s in during), during
    assert all(s.get("currentStep") == 1 for s in during), during  # none repeated or skipped
    assert all(s.get("stepStartedAt") == before["stepStartedAt"] for s in during), during
    assert len(world.events_with(ns, "Promoted")) == 1, world.kube.events(ns)
    assert len(world.events(ns, "StepAdvanced")) == 1, world.kube.events(ns)
    assert traffic.failures == 0, (traffic.statuses, traffic.errors)


SLOW_SCALE_DOWN = {"scaleDownDelay": "40s"}
"""The rollback waits this long between traffic off and the canary scaled down: it outlasts
the takeover, so the leader dies inside the rollback and the standby finishes it."""


def test_the_standby_finishes_a_rollback_the_leader_was_killed_in(
    world: World, ns: str, cluster: ClusterUnderTest
) -> None:
    # Given the chart's two operator pods, v1 serving steady traffic, and a v3 failing a
    # fifth of its requests, rolled back: traffic is on stable, the scale-down delay runs
    leader = _wait_two_operator_pods_and_a_leader(world.kube)
    given_v1_serving(world, ns, rollback=SLOW_SCALE_DOWN)
    traffic = SteadyTraffic(world.kube.service_url(ns, NAME), NAME).start()
    seen: list[dict[str, Any]] = []
    try:
        world.apply_version(
            ns, "v3", env={"COALMINE_SERVING_FAULT_ERROR_RATE": "0.2"}, rollback=SLOW_SCALE_DOWN
        )
        rolling = wait_status(
            world.kube, ns, NAME,
            lambda s: s.get("phase") == "RollingBack"
            and bool((s.get("rollback") or {}).get("trafficOnStableAt")),
            420, "v3's traffic to be on stable, its scale-down delay running",
        )  # fmt: skip
        # When the leader's process is killed, like a node dying: no release, no last write
        killed_at = _kill_the_leader_until_the_standby_leads(world, leader, cluster, "mid-rollback")
        # Client traffic from here on: the canary has had none since trafficOnStableAt
        traffic.statuses.clear()
        traffic.by_version.clear()

        def degraded(status: dict[str, Any]) -> bool:
            seen.append(status)
            return status.get("phase") == "Degraded"

        # Then the standby finishes the same rollback
        done = wait_status(world.kube, ns, NAME, degraded, 180, "the standby's rollback")
        world.events_with(ns, "RolledBack")  # posted just after the Degraded status
        # Negative checks, polled over a 10 s window after the end
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert len(world.events(ns, "RolledBack")) == 1, world.kube.events(ns)
            assert len(world.events(ns, "RollingBack")) == 1, world.kube.events(ns)
            canary = world.kube.get("apps/v1", "Deployment", f"{NAME}-canary", ns)
            assert canary["spec"]["replicas"] == 0, canary["spec"]
            assert (md_status(world.kube, ns, NAME).get("weight") or 0) == 0
            time.sleep(0.5)
    finally:
        traffic.stop()
    # The same decision, resumed, not a new one: same check, start, and scale-down delay start
    for key in ("check", "startedAt", "trafficOnStableAt", "revision"):
        assert done["rollback"][key] == rolling["rollback"][key], (key, rolling, done)
    assert done["rollback"]["stage"] == "Done", done["rollback"]
    assert _stamp(done["rollback"]["completedAt"]) > killed_at, done["rollback"]  # by the standby
    # The weight never rose: every status from the kill to the end says 0
    assert seen and all((s.get("weight") or 0) == 0 for s in seen), seen
    # And stable served every request through the takeover
    assert traffic.failures == 0, (traffic.statuses, traffic.errors)
    assert set(traffic.by_version) == {"v1"}, traffic.by_version


def _promoting(status: dict[str, Any]) -> bool:
    """A promotion in flight: stable already names the canary's revision."""
    stable, canary = status.get("stable") or {}, status.get("canary") or {}
    return bool(canary) and stable.get("revision") == canary.get("revision")


def _measured_at(status: dict[str, Any]) -> datetime:
    stamp = (status.get("analysis") or {}).get("measuredAt")
    if not stamp:
        return datetime.min.replace(tzinfo=UTC)
    return _stamp(stamp)


def _stamp(rfc3339: str) -> datetime:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))


def _wait_two_operator_pods_and_a_leader(kube: Kube) -> str:
    """The chart's replicas, both Ready (a standby is live too); the leader's pod name."""
    eventually(
        lambda: True if len(kube.ready_pods(OPERATOR_NAMESPACE, OPERATOR_PODS)) == 2 else None,
        timeout=180, what="two Ready operator pods",
    )  # fmt: skip
    names = {p.name for p in kube.ready_pods(OPERATOR_NAMESPACE, OPERATOR_PODS)}
    leader: str = eventually(
        lambda: h if (h := _lease_holder(kube)) in names else None,
        timeout=60, what="one of them to hold the Lease",
    )  # fmt: skip
    return leader


def _kill_the_leader_until_the_standby_leads(
    world: World, leader: str, cluster: ClusterUnderTest, when: str
) -> datetime:
    """SIGKILL ``leader`` and wait for the other pod to hold the Lease; prints how long that
    took (its target is bench.takeover's, B10). Returns when the kill was sent."""
    killed_at = datetime.now(UTC)
    killed = _kill_ungracefully(world.kube, leader, cluster)
    standby = eventually(
        lambda: _other_holder(world.kube, leader),
        timeout=60, what="the standby to take the Lease", interval=0.2,
    )  # fmt: skip
    print(f"\nHA takeover {when}: {leader} killed, {standby} holds the Lease "
          f"after {time.monotonic() - killed:.1f}s")  # fmt: skip
    return killed_at


def _other_holder(kube: Kube, old: str) -> str | None:
    holder = _lease_holder(kube)
    return holder if holder not in (None, old) else None


def _lease_holder(kube: Kube) -> str | None:
    """The pod holding the Lease (its identity is ``<pod>_<process id>``)."""
    try:
        lease = kube.get("coordination.k8s.io/v1", "Lease", LEASE, OPERATOR_NAMESPACE)
    except ApiException:
        return None
    holder = str((lease.get("spec") or {}).get("holderIdentity") or "")
    return holder.split("_")[0] or None


def _kill_ungracefully(kube: Kube, pod: str, cluster: ClusterUnderTest) -> float:
    """SIGKILL of the pod's operator process when the node is this machine (the kubelet then
    restarts the container, as a standby); on a foreign cluster, a force delete with grace
    period 0. Returns when (monotonic)."""
    if cluster.local is not None:
        pids = _operator_pids(pod)
        assert pids, f"no operator process of {pod} found on this node"
        killed = time.monotonic()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return killed
    killed = time.monotonic()
    kube.delete("v1", "Pod", pod, OPERATOR_NAMESPACE, grace_period_seconds=0)
    return killed


def _operator_pids(pod: str) -> list[int]:
    """Processes on this machine whose environment says they are ``pod``'s operator (the
    chart sets POD_NAME from the downward API)."""
    wanted = f"POD_NAME={pod}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if wanted in environ and b"operator" in cmdline:
            found.append(int(entry.name))
    return found
