"""What only several nodes show (issue 18, item 3), on the kind cluster's two workers
(e2e/kind/run.sh): the spec's ``topologySpreadConstraints`` spread stable's and the canary's
pods over the workers, and a worker holding pods of both is drained in the middle of a canary
step. On a cluster with fewer than two schedulable nodes (the single node) they skip and say so.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from e2e.devcluster.binaries import kube_bin_dir
from e2e.devcluster.servicetraffic import SteadyTraffic
from e2e.support.kube import Kube, eventually
from e2e.support.rollout import NAME, World, given_v1_serving, md_status, wait_status

pytestmark = pytest.mark.e2e

MD_LABEL = "coalmine.dev/model-deployment"
VARIANT_LABEL = "coalmine.dev/variant"
# Each variant spread evenly over the nodes it may run on: `matchLabelKeys` adds the pod's own
# variant to the selector, and `nodeTaintsPolicy: Honor` leaves out nodes the pods cannot go to
# (the control plane; a cordoned worker), so that they are not counted as empty domains.
SPREAD: list[dict[str, Any]] = [
    {
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "DoNotSchedule",
        "nodeTaintsPolicy": "Honor",
        "labelSelector": {"matchLabels": {MD_LABEL: NAME}},
        "matchLabelKeys": [VARIANT_LABEL],
    }
]
PLACEMENT = {"topologySpreadConstraints": SPREAD}
MIN_SAMPLES = 10  # e2e.support.rollout.model_deployment's policy.minSamples


def _schedulable_nodes(kube: Kube) -> list[str]:
    """Nodes a model pod may go to: not cordoned, no NoSchedule/NoExecute taint."""
    keep_out = ("NoSchedule", "NoExecute")
    return sorted(
        n["metadata"]["name"]
        for n in kube.list_objects("v1", "Node", None)
        if not n["spec"].get("unschedulable")
        and not any(t["effect"] in keep_out for t in n["spec"].get("taints") or [])
    )


@pytest.fixture
def workers(world: World) -> list[str]:
    names = _schedulable_nodes(world.kube)
    if len(names) < 2:
        pytest.skip(
            f"needs two schedulable nodes (the kind cluster of e2e/kind/run.sh has two workers); "
            f"this cluster has {len(names)}: {names}"
        )
    return names


def _placement(kube: Kube, ns: str, variant: str) -> dict[str, str]:
    """Ready pods of one variant, not being deleted: pod -> node."""
    selector = f"{MD_LABEL}={NAME},{VARIANT_LABEL}={variant}"
    ready = {p.name for p in kube.ready_pods(ns, selector)}
    pods = kube.list_objects("v1", "Pod", ns, selector)
    return {
        p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods if p["metadata"]["name"] in ready
    }


def _all_ready(kube: Kube, ns: str, variant: str) -> dict[str, str] | None:
    """The variant's placement once as many of its pods are Ready as its Deployment wants."""
    want = kube.get("apps/v1", "Deployment", f"{NAME}-{variant}", ns)["spec"]["replicas"]
    found = _placement(kube, ns, variant)
    return found if len(found) == want else None


def _kubectl(*args: str, kubeconfig: Any, timeout: float = 300) -> str:
    argv = [str(kube_bin_dir() / "kubectl"), f"--kubeconfig={kubeconfig}", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stdout}{done.stderr}"
    return done.stdout


def _spread_evenly(placement: dict[str, str], nodes: list[str]) -> bool:
    per_node = Counter(placement.values())
    counts = [per_node[node] for node in nodes]
    return max(counts) - min(counts) <= 1 and set(placement.values()) <= set(nodes)


def test_spread_constraints_from_the_spec_place_stable_and_canary_pods_on_every_worker(
    world: World, ns: str, workers: list[str]
) -> None:
    # Given v1 with four pods, its spec spreading each variant over the nodes by hostname
    steps = [{"weight": 50, "pause": "600s"}]  # the canary holds still while we look
    given_v1_serving(world, ns, replicas=4, placement=PLACEMENT, steps=steps)
    # When v2 starts its canary step at 50%
    world.apply_version(ns, "v2", replicas=4, placement=PLACEMENT, steps=steps)
    canary = eventually(lambda: _all_ready(world.kube, ns, "canary"), timeout=300,
                        what="every canary pod Ready")  # fmt: skip
    stable = eventually(lambda: _all_ready(world.kube, ns, "stable"), timeout=60,
                        what="every stable pod Ready")  # fmt: skip
    # Then every worker runs pods of both, each variant evenly (skew at most 1)
    assert len(stable) >= 2 and len(canary) >= 2, (stable, canary)
    assert set(stable.values()) == set(workers), (stable, workers)
    assert set(canary.values()) == set(workers), (canary, workers)
    assert _spread_evenly(stable, workers) and _spread_evenly(canary, workers), (stable, canary)
    # And the pods carry the constraint as the spec wrote it; the API server has added the
    # values of `matchLabelKeys` to its selector: the pod's own variant
    pod = world.kube.get("v1", "Pod", next(iter(canary)), ns)
    [got] = pod["spec"]["topologySpreadConstraints"]
    given, selector = SPREAD[0], got.pop("labelSelector")
    assert got == {k: v for k, v in given.items() if k != "labelSelector"}, got
    assert selector == {
        **given["labelSelector"],
        "matchExpressions": [{"key": VARIANT_LABEL, "operator": "In", "values": ["canary"]}],
    }, selector


def test_a_worker_drained_mid_step_loses_no_request_and_the_canary_promotes_on_fresh_data(
    world: World, ns: str, workers: list[str]
) -> None:
    # Given v1 on two pods spread over the workers, serving steady client traffic
    steps = [{"weight": 50, "pause": "40s"}]
    given_v1_serving(world, ns, replicas=2, placement=PLACEMENT, steps=steps)
    traffic = SteadyTraffic(world.kube.service_url(ns, NAME), NAME).start()
    drained: str | None = None
    try:
        # And v2's canary step running, a worker holding pods of both variants
        world.apply_version(ns, "v2", replicas=2, placement=PLACEMENT, steps=steps)
        wait_status(world.kube, ns, NAME,
                    lambda s: s.get("phase") == "Progressing" and bool(s.get("stepStartedAt")),
                    300, "v2's canary step to start")  # fmt: skip

        def a_worker_with_both() -> str | None:
            stable = set(_placement(world.kube, ns, "stable").values())
            canary = set(_placement(world.kube, ns, "canary").values())
            both = sorted(stable & canary & set(workers))
            return both[0] if both and len(stable) == 2 else None

        drained = eventually(a_worker_with_both, timeout=120, what="a worker with both variants")
        # When it is drained as an administrator does it: cordon, then evict every pod
        _kubectl("drain", drained, "--ignore-daemonsets", "--delete-emptydir-data",
                 "--timeout=240s", kubeconfig=world.kube_config, timeout=300)  # fmt: skip
        drained_at = datetime.now(UTC)
        during = md_status(world.kube, ns, NAME)
        # Then the rollout goes on on the other worker, and promotes v2 (the status of the
        # decision, whose analysis is the one that passed the step, then Healthy)
        decided = wait_status(world.kube, ns, NAME,
                              lambda s: (s.get("stable") or {}).get("version") == "v2",
                              420, "v2 to be promoted after the drain")  # fmt: skip
        wait_status(world.kube, ns, NAME, lambda s: s.get("phase") == "Healthy", 300,
                    "v2 to be Healthy")  # fmt: skip
    finally:
        traffic.stop()
        if drained is not None:
            _kubectl("uncordon", drained, kubeconfig=world.kube_config)
    # No client request failed, through the eviction of stable's and the canary's pods
    assert traffic.failures == 0, (traffic.statuses, traffic.errors)
    assert traffic.by_version["v1"] > 0 and traffic.by_version["v2"] > 0, traffic.by_version
    # The drain did not end the rollout: it was still at its canary step after the drain
    assert (during.get("stable") or {}).get("version") == "v1", during
    # Nothing was promoted on missing data: the analysis that passed the step was measured
    # after the drain (on the replacement pods), with enough samples for every check
    analysis = decided.get("analysis") or {}
    measured = datetime.fromisoformat(str(analysis.get("measuredAt")).replace("Z", "+00:00"))
    assert analysis.get("verdict") == "pass" and measured > drained_at, (analysis, drained_at)
    samples = {c["name"]: c.get("samples", 0) for c in analysis.get("checks", [])}
    assert samples and all(n >= MIN_SAMPLES for n in samples.values()), analysis
