"""The model gates on real pods (issue 12): checks that judge what a model answers, not only
whether it answers, with client traffic through the Service and delayed labels posted by a
label pipeline (in batches, on new connections, through the same Service: any pod joins a
label, by the prediction's signed receipt).

Mirrors tests/coalmine/integration/test_model_gates.py, where the kubelet is a stand-in; here
the receipt keys are a real Secret mounted by the real kubelet, pods really go away, and
kube-proxy picks the pod each label batch reaches.
"""

from __future__ import annotations

import pytest

from e2e.devcluster.labels import LabelPipeline
from e2e.devcluster.servicetraffic import SteadyTraffic
from e2e.devcluster.specs import DEFAULT_CHECKS
from e2e.support.kube import eventually
from e2e.support.rollout import (
    NAME,
    World,
    check_status,
    given_v1_serving,
    rollback_decided,
    rolled_back,
)

pytestmark = pytest.mark.e2e

ACCURACY = {"name": "accuracy", "quality": {"metric": "accuracy", "min": 0.8, "minLabels": 10}}
STABLE_SELECTOR = "coalmine.dev/variant=stable"


def test_v4_with_worse_accuracy_rolls_back_on_quality(world: World, ns: str) -> None:
    # Given v1 serving steady client traffic, each prediction's label posted seconds later
    given_v1_serving(world, ns)
    traffic = SteadyTraffic(world.kube.service_url(ns, NAME), NAME).start()
    try:
        # When v4 is confidently wrong (no errors, normal latency)
        world.apply_version(ns, "v4", artifact="inverted", checks=[*DEFAULT_CHECKS, ACCURACY])
        # Then it is rolled back on quality alone
        done = rolled_back(world, ns, "v4")
    finally:
        traffic.stop()  # and the pipeline posts every label still waiting
    assert done["rollback"]["check"] == "accuracy", done["rollback"]
    accuracy = check_status(done, "accuracy")
    assert accuracy["value"] < 0.5 and accuracy["samples"] >= 10, accuracy
    verdicts = {c["name"]: c["verdict"] for c in done["analysis"]["checks"]}
    assert verdicts["error-rate"] != "fail" and verdicts["latency-p99"] != "fail", verdicts
    # And every label joined, those posted after the canary was scaled down included
    _all_joined(traffic.labels)
    # And pods other than the canary's joined labels of the canary's predictions, counted
    # under the canary's variant and revision
    revision = done["rollback"]["revision"]
    canary_pods = _pods_with(world, ns, 'coalmine_model_info{variant="canary"}')
    counted = _feedback_by_pod(world, ns, f'variant="canary",revision="{revision}"')
    assert canary_pods and set(counted) - canary_pods, (counted, canary_pods)


def test_labels_join_while_a_serving_pod_is_replaced(world: World, ns: str) -> None:
    # Given three v1 pods serving steady traffic, each label posted 10 s after its prediction
    given_v1_serving(world, ns, replicas=3)
    traffic = SteadyTraffic(world.kube.service_url(ns, NAME), NAME, rps=20, label_delay=10.0)
    traffic.start()
    try:
        eventually(lambda: True if traffic.by_version["v1"] >= 60 else None,
                   timeout=60, what="60 predictions")  # fmt: skip
        # When one serving pod is deleted while labels for its predictions are still waiting
        before = {p.name for p in world.kube.ready_pods(ns, STABLE_SELECTOR)}
        victim = sorted(before)[0]
        world.kube.delete("v1", "Pod", victim, ns)
        _wait_gone(world, ns, victim)
        waiting_when_gone = traffic.labels.waiting
        # and the Deployment's new pod serves
        replacement = eventually(
            lambda: ({p.name for p in world.kube.ready_pods(ns, STABLE_SELECTOR)} - before)
            or None,
            timeout=120, what="a replacement pod Ready",
        )  # fmt: skip
        # Then the labels keep joining, the new pod's included (its receipts' keys come from
        # the same Secret), until the pipeline has posted every label
        new_pod = f'pod="{sorted(replacement)[0]}"'
        eventually(lambda: _feedback_by_pod(world, ns, new_pod) or None,
                   timeout=60, what="the new pod to join labels")  # fmt: skip
    finally:
        traffic.stop()
    labels = traffic.labels
    print(f"\njoin rate with a pod replaced: {labels.summary()}; "
          f"{waiting_when_gone} labels were waiting when {victim} was gone")  # fmt: skip
    assert waiting_when_gone >= 50, "too few labels outlived the pod to prove anything"
    assert labels.added and labels.joined / labels.added >= 0.999, labels.summary()
    assert not labels.rejected and not labels.dropped and not labels.waiting, labels.summary()
    assert traffic.failures == 0, (traffic.statuses, traffic.errors)


def test_a_canary_whose_outputs_shift_is_rolled_back_by_the_drift_gate(
    world: World, ns: str
) -> None:
    # Given v1 serving steady traffic
    given_v1_serving(world, ns)
    traffic = SteadyTraffic(world.kube.service_url(ns, NAME), NAME).start()
    drift = {"name": "output-drift", "drift": {"method": "psi", "max": 0.2}}
    try:
        # When v2 predicts class 1 for 80% of the rows where v1 does for 50%
        world.apply_version(ns, "v2", artifact="shifted", checks=[drift])
        # Then it is rolled back by the drift of its outputs
        done = rollback_decided(world, ns, "v2")
    finally:
        traffic.stop()
    assert done["rollback"]["check"] == "output-drift", done["rollback"]
    assert check_status(done, "output-drift")["value"] > 0.2, done["analysis"]


def test_a_canary_twice_as_slow_as_stable_is_rolled_back_by_latency_vs_stable(
    world: World, ns: str
) -> None:
    # Given v1 serving steady traffic, slowed on purpose so "twice as slow" holds at any load.
    # The delays sit in different latency buckets (0.025-0.05 s, 0.075-0.1 s): a quantile from
    # a histogram cannot tell apart two latencies that share one (0.02 s plus a busy node's
    # overhead can pass 0.025 s).
    given_v1_serving(world, ns, env={"COALMINE_SERVING_FAULT_LATENCY_SECONDS": "0.04"})
    traffic = SteadyTraffic(world.kube.service_url(ns, NAME), NAME).start()
    vs_stable = {
        "name": "latency-vs-stable",
        "latency": {"quantile": 0.5, "vsStable": {"maxRatio": 1.5}},
    }
    try:
        # When v2 takes twice as long
        world.apply_version(
            ns, "v2", env={"COALMINE_SERVING_FAULT_LATENCY_SECONDS": "0.08"}, checks=[vs_stable]
        )
        # Then it is rolled back on its latency relative to stable's
        done = rollback_decided(world, ns, "v2")
    finally:
        traffic.stop()
    assert done["rollback"]["check"] == "latency-vs-stable", done["rollback"]
    check = check_status(done, "latency-vs-stable")
    assert check["value"] > 1.5 * check["stableValue"], check


def test_twice_stable_error_rate_is_rolled_back_by_error_rate_vs_stable(
    world: World, ns: str
) -> None:
    # Given v1 serving steady traffic and failing 10% of it
    given_v1_serving(world, ns, env={"COALMINE_SERVING_FAULT_ERROR_RATE": "0.1"})
    # Two clients: a doubled rate needs a few hundred requests per side to be significant
    traffic = SteadyTraffic(world.kube.service_url(ns, NAME), NAME, rps=40, clients=2).start()
    vs_stable = {"name": "errors-vs-stable", "errorRate": {"vsStable": {}}}  # no absolute max
    try:
        # When v2 fails 20%: worse than stable, though no absolute limit says so
        world.apply_version(
            ns, "v2", env={"COALMINE_SERVING_FAULT_ERROR_RATE": "0.2"}, checks=[vs_stable],
            # One long step at half the traffic; a failing canary ends it early.
            steps=[{"weight": 50, "pause": "60s"}], analysis={"interval": "4s"},
        )  # fmt: skip
        # Then it is rolled back on the comparison with stable alone
        done = rollback_decided(world, ns, "v2")
    finally:
        traffic.stop()
    check = check_status(done, "errors-vs-stable")
    print(f"\nerrors vs stable, {traffic.sent} requests sent: {check['reason']}")
    assert done["rollback"]["check"] == "errors-vs-stable", done["rollback"]
    assert check["value"] > check["stableValue"] > 0, check


def _all_joined(labels: LabelPipeline) -> None:
    """Every label the pipeline took joined on the pod it reached (called after stop())."""
    assert labels.joined > 0 and labels.joined == labels.added, labels.summary()
    assert not labels.rejected and labels.join_rate == 1.0, labels.summary()


def _pods_with(world: World, ns: str, series: str) -> set[str]:
    """Pods that exposed ``series`` in the last 15 minutes, gone ones included."""
    selector = series.replace("{", f'{{namespace="{ns}",', 1)
    found = world.product.prometheus.query(f"group by (pod) (last_over_time({selector}[15m]))")
    return {r["metric"]["pod"] for r in found}


def _feedback_by_pod(world: World, ns: str, matchers: str) -> dict[str, float]:
    """Labels joined per pod that joined them (Prometheus' ``pod`` target label), for the
    predictions ``matchers`` select (their variant and revision come from the receipt)."""
    query = f'sum by (pod) (coalmine_feedback_total{{namespace="{ns}",{matchers}}}) > 0'
    return {r["metric"]["pod"]: float(r["value"][1]) for r in world.product.prometheus.query(query)}


def _wait_gone(world: World, ns: str, pod: str) -> None:
    def gone() -> bool | None:
        names = {p["metadata"]["name"] for p in world.kube.list_objects("v1", "Pod", ns)}
        return True if pod not in names else None

    eventually(gone, timeout=120, what=f"pod {pod} to be gone")
