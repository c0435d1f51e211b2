"""The ``gatewayAPI`` router: an HTTPRoute with weighted backends, exact to the percent.

Two Services (``<name>-stable``, ``<name>-canary``) are the backends; the route's weights are
the split, whatever the pod counts (the engine still gives the canary pods for its share, with
this router's pod math, ``coalmine.rollout.pods.gatewayapi``).
"""

from __future__ import annotations

from coalmine.api import ModelDeploymentSpec
from coalmine.k8s import KubeApi, ObjectRef
from coalmine.manifests import Manifest, Owner, Variant, child_name, metadata, selector, service
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
        return canary_weight_of(route, child_name(target.owner, Variant.CANARY))

    def apply(self, target: RouteTarget, weight: int) -> None:
        # Services first: a route must never point at a backend that does not exist yet.
        for variant in Variant:
            self._kube.apply(variant_service(target.owner, target.spec, variant))
        self._kube.apply(http_route(target.owner, target.spec, weight))

    def children(self, target: RouteTarget) -> tuple[ObjectRef, ...]:
        owner = target.owner
        services = tuple(
            ObjectRef("Service", owner.namespace, child_name(owner, variant)) for variant in Variant
        )
        return (*services, ObjectRef("HTTPRoute", owner.namespace, owner.name))


def canary_weight_of(route: Manifest, canary_service: str) -> int:
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


def variant_service(owner: Owner, spec: ModelDeploymentSpec, variant: Variant) -> Manifest:
    """One Service per variant: the HTTPRoute's backends."""
    return service(owner, child_name(owner, variant), spec.traffic.port, selector(owner, variant))


def http_route(owner: Owner, spec: ModelDeploymentSpec, canary_weight: int) -> Manifest:
    """The weighted HTTPRoute: stable gets ``100 - w``, canary ``w``."""
    route = spec.traffic.gateway_api
    if route is None:
        raise ValueError("spec.traffic.gatewayAPI is required for the gatewayAPI router")
    shares = ((Variant.STABLE, 100 - canary_weight), (Variant.CANARY, canary_weight))
    backends = [
        {"name": child_name(owner, variant), "port": spec.traffic.port, "weight": weight}
        for variant, weight in shares
    ]
    body: Manifest = {
        "parentRefs": [ref.to_manifest() for ref in route.parent_refs],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": route.path_prefix}}],
                "backendRefs": backends,
            }
        ],
    }
    if route.hostnames:
        body["hostnames"] = list(route.hostnames)
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": metadata(owner, owner.name, {}),
        "spec": body,
    }
