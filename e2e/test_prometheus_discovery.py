"""Prometheus outside the cluster finds the model pods through the real API server
(kubernetes_sd_configs, role pod) and scrapes the serving metrics from each of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.devcluster.sdprometheus import KubernetesSdPrometheus
from e2e.support.clusters import ClusterUnderTest
from e2e.support.kube import Kube
from e2e.support.steps import (
    given_a_serving_deployment,
    then_its_pods_become_ready_with_pod_ips,
    when_requests_go_to_the_service,
)
from e2e.support.traffic import Traffic
from e2e.support.workloads import tiny_classifier

pytestmark = pytest.mark.e2e

REPLICAS = 2


@pytest.fixture
def prometheus(
    cluster: ClusterUnderTest, namespace: str, tmp_path: Path
) -> Iterator[KubernetesSdPrometheus]:
    if not cluster.routable:
        pytest.skip("Prometheus runs on this machine, which cannot route to this cluster's pods")
    server = KubernetesSdPrometheus(tmp_path / "prometheus", cluster.kubeconfig, "app", [namespace])
    server.start()
    try:
        yield server
    finally:
        server.close()


def test_prometheus_discovers_the_pods_through_the_api_and_scrapes_them(
    kube: Kube,
    traffic: Traffic,
    namespace: str,
    serving_image: str,
    prometheus: KubernetesSdPrometheus,
) -> None:
    # Given serving pods that are Ready, and Prometheus watching the namespace's pods
    given_a_serving_deployment(kube, namespace, "iris", serving_image, tiny_classifier(), REPLICAS)
    pods = then_its_pods_become_ready_with_pod_ips(kube, namespace, "iris", REPLICAS)
    # When the model serves some requests
    assert when_requests_go_to_the_service(traffic, namespace, "iris", 20) == [200] * 20
    # Then every pod is a healthy target, found by discovery (not configured by address)
    up = prometheus.wait_for(f'count(up{{namespace="{namespace}"}} == 1) == {REPLICAS}', 60)
    assert float(up[0]["value"][1]) == REPLICAS
    # And the serving metrics arrive labelled with the pod they came from
    series = prometheus.wait_for('sum by (pod) (coalmine_requests_total{outcome="success"})', 60)
    assert {s["metric"]["pod"] for s in series} <= {p.name for p in pods}
    total = prometheus.wait_for('sum(coalmine_requests_total{outcome="success"}) == 20', 60)
    assert float(total[0]["value"][1]) == 20
