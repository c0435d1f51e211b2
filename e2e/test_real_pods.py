"""The cluster runs real pods: a Deployment of the serving image becomes Ready, its pods get
addresses on the pod network, and its Service spreads real requests over all of them."""

from __future__ import annotations

import pytest

from e2e.support.kube import Kube
from e2e.support.steps import (
    given_a_serving_deployment,
    given_the_service_routes_to_every_pod,
    successes_counted_by,
    then_its_pods_become_ready_with_pod_ips,
    when_requests_go_to_the_service,
)
from e2e.support.traffic import Traffic
from e2e.support.workloads import tiny_classifier

pytestmark = pytest.mark.e2e

REPLICAS = 3
# With kube-proxy picking a pod at random per connection, the chance that one of 3 pods gets
# none of 90 requests is 3 * (2/3)**90, about 4e-16: a pod left out means broken balancing.
REQUESTS = 90


def test_a_service_spreads_real_requests_over_every_ready_pod(
    kube: Kube, traffic: Traffic, namespace: str, serving_image: str
) -> None:
    # Given a Deployment of the serving image with three replicas behind a Service
    given_a_serving_deployment(kube, namespace, "iris", serving_image, tiny_classifier(), REPLICAS)
    # Then every pod becomes Ready with its own address on the pod network
    pods = then_its_pods_become_ready_with_pod_ips(kube, namespace, "iris", REPLICAS)
    before = given_the_service_routes_to_every_pod(traffic, namespace, "iris", pods)
    # When inference requests go to the Service, one connection each
    statuses = when_requests_go_to_the_service(traffic, namespace, "iris", REQUESTS)
    # Then all succeed, and each pod's own metrics show it served a share of them
    assert statuses == [200] * REQUESTS
    served = {pod.name: successes_counted_by(traffic, pod) - before[pod.name] for pod in pods}
    assert sum(served.values()) == REQUESTS, served
    assert all(count > 0 for count in served.values()), served
