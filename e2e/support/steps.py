"""Given/When/Then steps shared by the e2e tests: each one a sentence of the scenario."""

from __future__ import annotations

import re

from e2e.support.kube import Kube, PodRef, eventually
from e2e.support.traffic import Traffic
from e2e.support.workloads import SERVING_PORT, Model, infer_body, serving_workload

ROW = [0.9, 0.1, 0.2, 0.3]


def given_a_serving_deployment(
    kube: Kube, namespace: str, name: str, image: str, model: Model, replicas: int
) -> None:
    for manifest in serving_workload(namespace, name, image, model, replicas):
        kube.apply(manifest)


def then_its_pods_become_ready_with_pod_ips(
    kube: Kube, namespace: str, name: str, replicas: int, timeout: float = 300
) -> list[PodRef]:
    kube.wait_deployment_ready(namespace, name, timeout)
    pods = kube.ready_pods(namespace, f"app={name}")
    assert len(pods) == replicas, pods
    ips = {p.ip for p in pods}
    assert len(ips) == replicas and "" not in ips, ips
    return pods


def when_requests_go_to_the_service(
    traffic: Traffic, namespace: str, name: str, count: int
) -> list[int]:
    # kube-proxy programs a Service's rules a moment after its pods turn Ready (until then
    # the ClusterIP refuses connections); wait for that on the health path, which no
    # inference counter sees, so the counted requests below all meet a routed Service.
    eventually(
        lambda: traffic.service_answers(namespace, name, SERVING_PORT, "/v2/health/ready") or None,
        timeout=60,
        what=f"Service {name} to route to its ready pods",
    )
    path = f"/v2/models/{name}/infer"
    return [
        traffic.post_service(namespace, name, SERVING_PORT, path, infer_body([ROW]))[0]
        for _ in range(count)
    ]


def given_the_service_routes_to_every_pod(
    traffic: Traffic, namespace: str, name: str, pods: list[PodRef]
) -> dict[str, int]:
    """Send requests until each pod has answered one (seen on its own /metrics); returns every
    pod's count then, to subtract. kube-proxy programs the endpoints a moment after they turn
    Ready, and not always all in one sync: seen once, 90 requests all to the first pod."""

    def every_pod_answered() -> dict[str, int] | None:
        counts = {pod.name: successes_counted_by(traffic, pod) for pod in pods}
        if all(counts.values()):
            return counts
        when_requests_go_to_the_service(traffic, namespace, name, 10)
        return None

    return eventually(every_pod_answered, timeout=60, what=f"Service {name} to reach every pod")


def successes_counted_by(traffic: Traffic, pod: PodRef) -> int:
    """The pod's own count of successful inference requests, read from its /metrics."""
    text = traffic.get_pod(pod, SERVING_PORT, "/metrics")
    pattern = re.compile(r'^coalmine_requests_total\{[^}]*outcome="success"[^}]*\} (\S+)$', re.M)
    return int(sum(float(value) for value in pattern.findall(text)))
