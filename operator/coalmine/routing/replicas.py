"""The ``replicas`` router: one client Service, the split follows the ready pods.

Weight above 0: the Service selects both variants, so the canary gets
``canary_ready / (canary_ready + stable_ready)`` of the requests (stable 10 ready, canary 4
ready -> 29%); the engine sizes the canary for the weight it wants with this router's pod math,
``coalmine.rollout.pods.replicas``. Weight 0: the selector names ``variant=stable`` only, which
takes the canary out of traffic without killing its pods, so a rollback can confirm "traffic on
stable" before it scales anything down.
"""

from __future__ import annotations

from coalmine.api import ModelDeploymentSpec
from coalmine.k8s import KubeApi, ObjectRef
from coalmine.manifests import (
    LABEL_VARIANT,
    Manifest,
    Owner,
    Variant,
    child_name,
    selector,
    service,
)
from coalmine.rollout.pods.replicas import observed_weight
from coalmine.rollout.types import ChildObservation
from coalmine.routing.base import RouteTarget


class ReplicasRouter:
    def __init__(self, kube: KubeApi) -> None:
        self._kube = kube

    def observe(
        self,
        target: RouteTarget,
        stable: ChildObservation | None,
        canary: ChildObservation | None,
    ) -> int | None:
        found = self._kube.get(ObjectRef("Service", target.owner.namespace, target.owner.name))
        if found is None:
            return None
        chosen = found.get("spec", {}).get("selector", {})
        spans_both = LABEL_VARIANT not in chosen
        return observed_weight(
            stable.ready_replicas if stable else 0,
            canary.ready_replicas if canary else 0,
            spans_both,
        )

    def apply(self, target: RouteTarget, weight: int) -> None:
        # The canary's own Service: no client uses it; stable mirrors to it at a shadow step.
        self._kube.apply(canary_service(target.owner, target.spec))
        self._kube.apply(client_service(target.owner, target.spec, weight > 0))

    def children(self, target: RouteTarget) -> tuple[ObjectRef, ...]:
        owner = target.owner
        return (
            ObjectRef("Service", owner.namespace, owner.name),
            ObjectRef("Service", owner.namespace, child_name(owner, Variant.CANARY)),
        )


def client_service(owner: Owner, spec: ModelDeploymentSpec, both_variants: bool) -> Manifest:
    """The one Service clients call. Spanning both variants splits traffic by ready pods;
    stable-only takes the canary out of traffic without killing it."""
    chosen: Variant | None = None if both_variants else Variant.STABLE
    return service(owner, owner.name, spec.traffic.port, selector(owner, chosen))


def canary_service(owner: Owner, spec: ModelDeploymentSpec) -> Manifest:
    """``<name>-canary``, selecting the canary's pods only: the mirror target."""
    name = child_name(owner, Variant.CANARY)
    return service(owner, name, spec.traffic.port, selector(owner, Variant.CANARY))
