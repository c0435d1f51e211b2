"""The ModelDeployment one tick is about, named once.

Reconcile builds a ``Subject`` from the object it read and passes it down: observe, act and the
status write all use the same reference, owner and route target, so nothing rebuilds them or
guesses a namespace. The namespace is the one the tick was started for (kopf's), which is the
object's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coalmine.api import API_VERSION, KIND, ModelDeploymentSpec
from coalmine.k8s import ObjectRef
from coalmine.manifests import Owner, Variant, child_name
from coalmine.routing import RouteTarget


@dataclass(frozen=True)
class Subject:
    """Identity of one ModelDeployment for one tick."""

    ref: ObjectRef
    """``ModelDeployment`` ``<namespace>/<name>``: where status, Events and controls go."""
    uid: str
    owner: Owner
    """The owner of its children (ownerReferences, names, labels)."""
    target: RouteTarget
    """What the router routes for: the owner and this tick's spec."""
    version: str = ""
    """The resourceVersion this tick read: the precondition of its status write, so a tick
    that decided from a status someone has since replaced writes nothing over it."""

    @classmethod
    def build(
        cls, ref: ObjectRef, uid: str, spec: ModelDeploymentSpec, version: str = ""
    ) -> Subject:
        owner = Owner(name=ref.name, namespace=ref.namespace, uid=uid)
        target = RouteTarget(owner=owner, spec=spec)
        return cls(ref=ref, uid=uid, owner=owner, target=target, version=version)

    @property
    def spec(self) -> ModelDeploymentSpec:
        return self.target.spec

    def child(self, variant: Variant) -> ObjectRef:
        """The Deployment that runs ``variant``."""
        return ObjectRef("Deployment", self.ref.namespace, child_name(self.owner, variant))

    def child_service(self, variant: Variant) -> ObjectRef:
        """The Service ``<name>-<variant>`` selecting only ``variant``'s pods (the mirror's
        target at a shadow step; the gatewayAPI router's backends)."""
        return ObjectRef("Service", self.ref.namespace, child_name(self.owner, variant))

    def involved_object(self) -> dict[str, Any]:
        """The reference an Event is recorded against."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.ref.name,
            "namespace": self.ref.namespace,
            "uid": self.uid,
        }
