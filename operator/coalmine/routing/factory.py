"""Pick the router the spec names."""

from __future__ import annotations

from coalmine.api import RouterKind
from coalmine.k8s import KubeApi
from coalmine.routing.base import TrafficRouter
from coalmine.routing.gatewayapi import GatewayApiRouter
from coalmine.routing.replicas import ReplicasRouter


def make_router(kind: RouterKind, kube: KubeApi) -> TrafficRouter:
    if kind == RouterKind.GATEWAY_API:
        return GatewayApiRouter(kube)
    return ReplicasRouter(kube)
