from __future__ import annotations

from coalmine.api import ModelDeploymentSpec, RouterKind
from coalmine.k8s import ObjectRef
from coalmine.manifests import Owner
from coalmine.rollout.pods import POD_MATH
from coalmine.rollout.types import ChildObservation
from coalmine.routing import RouteTarget, TrafficRouter, make_router
from coalmine.routing.factory import ROUTERS
from coalmine.routing.gatewayapi import GatewayApiRouter, canary_weight_of
from coalmine.routing.replicas import ReplicasRouter
from tests.coalmine.fakes import FakeKube

from .nop import NopRouter

OWNER = Owner("iris", "ml", "uid-1")
MODEL = {"name": "iris", "version": "v1", "uri": "file:///m.onnx", "format": "onnx"}


def _target(**traffic: object) -> RouteTarget:
    spec = ModelDeploymentSpec.model_validate({"model": MODEL, "traffic": traffic or {}})
    return RouteTarget(OWNER, spec)


def _ready(n: int) -> ChildObservation:
    return ChildObservation(revision="r", replicas=n, ready_replicas=n, updated=True)


def test_replicas_router_weight_follows_ready_pods_when_spanning_both():
    kube = FakeKube()
    router = ReplicasRouter(kube)
    target = _target()
    assert router.observe(target, _ready(10), _ready(4)) is None  # no Service yet
    router.apply(target, 30)
    assert router.observe(target, _ready(10), _ready(4)) == 29  # 4 / 14
    router.apply(target, 0)
    service = kube.get(ObjectRef("Service", "ml", "iris"))
    assert service is not None and service["spec"]["selector"]["coalmine.dev/variant"] == "stable"
    assert router.observe(target, _ready(10), _ready(4)) == 0  # pods alive, no traffic


def test_gateway_router_reads_back_the_route_weight():
    kube = FakeKube()
    target = _target(router="gatewayAPI", gatewayAPI={"parentRefs": [{"name": "gw"}]})
    router = GatewayApiRouter(kube)
    router.apply(target, 25)
    assert router.observe(target, None, None) == 25
    assert [c[1] for c in kube.calls] == ["Service", "Service", "HTTPRoute"]


def test_relative_backend_weights():
    route = {
        "spec": {
            "rules": [{"backendRefs": [{"name": "s", "weight": 3}, {"name": "c", "weight": 1}]}]
        }
    }
    assert canary_weight_of(route, "c") == 25
    assert canary_weight_of({"spec": {"rules": []}}, "c") == 0


def test_every_router_kind_has_an_adapter_and_pod_math():
    assert set(ROUTERS) == set(POD_MATH) == set(RouterKind)


def test_factory_and_nop():
    kube = FakeKube()
    assert isinstance(make_router(RouterKind.REPLICAS, kube), ReplicasRouter)
    assert isinstance(make_router(RouterKind.GATEWAY_API, kube), GatewayApiRouter)
    nop: TrafficRouter = NopRouter()
    assert nop.observe(_target(), None, None) is None
    nop.apply(_target(), 10)
    assert nop.observe(_target(), None, None) == 10
