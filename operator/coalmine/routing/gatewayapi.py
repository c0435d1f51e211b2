"""The ``gatewayAPI`` router: an HTTPRoute with weighted backends, exact to the percent.

Two Services (``<name>-stable``, ``<name>-canary``) are the backends; the route's weights are
the split, whatever the pod counts (the engine still gives the canary pods for its share).
"""

from __future__ import annotations

from coalmine import manifests
from coalmine.k8s import KubeApi, ObjectRef
from coalmine.rollout.types import ChildObservation
from coalmine.routing.base import RouteTarget


class GatewayApiRouter:
    def __init__(self, kube: KubeApi) -> None:
        self._kube = kube

    def observe(
        self,
        target: RouteTarget,
        stable: ChildObservation | None,
        canary: ChildObservation | None,
    ) -> int | None:
        route = self._kube.get(ObjectRef("HTTPRoute", target.owner.namespace, target.owner.name))
        if route is None:
            return None
        return canary_weight_of(route, manifests.child_name(target.owner, "canary"))

    def apply(self, target: RouteTarget, weight: int) -> None:
        # Services first: a route must never point at a backend that does not exist yet.
        for variant in ("stable", "canary"):
            self._kube.apply(manifests.variant_service(target.owner, target.spec, variant))
        self._kube.apply(manifests.http_route(target.owner, target.spec, weight))


def canary_weight_of(route: manifests.Manifest, canary_service: str) -> int:
    """Percent of the route's total backend weight on the canary Service (weights are
    relative: 1 and 3 mean 25%). Without any weight, traffic goes to stable."""
    refs = [
        ref
        for rule in route.get("spec", {}).get("rules", [])
        for ref in rule.get("backendRefs", [])
    ]
    total = sum(int(ref.get("weight", 1)) for ref in refs)
    canary = sum(int(ref.get("weight", 1)) for ref in refs if ref.get("name") == canary_service)
    return round(100 * canary / total) if total else 0
