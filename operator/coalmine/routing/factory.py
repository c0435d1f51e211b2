"""Pick the router the spec names: one line per router."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from coalmine.api import RouterKind
from coalmine.k8s import KubeApi
from coalmine.routing.base import TrafficRouter
from coalmine.routing.gatewayapi import GatewayApiRouter
from coalmine.routing.replicas import ReplicasRouter

ROUTERS: Mapping[RouterKind, Callable[[KubeApi], TrafficRouter]] = {
    RouterKind.REPLICAS: ReplicasRouter,
    RouterKind.GATEWAY_API: GatewayApiRouter,
}


def make_router(kind: RouterKind, kube: KubeApi) -> TrafficRouter:
    return ROUTERS[kind](kube)
