"""What every child carries: its owner, its name, its labels and its selector.

Children are named ``<model-deployment>-<variant>``, labelled with the ModelDeployment that owns
them, and carry an ownerReference to it, so deleting the ModelDeployment lets the garbage
collector remove them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coalmine.api import API_VERSION, KIND

# The metric contract's Variant, re-exported: a child's variant label and the server's
# ``variant`` metric label are the same value, so they are one type.
from coalmine_serving.contract import Variant as Variant

Manifest = dict[str, Any]
"""A Kubernetes object as the API server reads and writes it."""

LABEL_MD = "coalmine.dev/model-deployment"
LABEL_VARIANT = "coalmine.dev/variant"
LABEL_REVISION = "coalmine.dev/revision"
LABEL_VERSION = "coalmine.dev/version"
LABEL_MODEL = "coalmine.dev/model"
MANAGED_BY = {"app.kubernetes.io/managed-by": "coalmine-operator"}


@dataclass(frozen=True)
class Owner:
    """The ModelDeployment that owns the children."""

    name: str
    namespace: str
    uid: str


def owner_reference(owner: Owner) -> Manifest:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(child: Manifest, uid: str) -> bool:
    """Whether the ModelDeployment with ``uid`` controls ``child`` (else it is not ours).

    The controller ownerReference, not labels: anyone who can create a Service can copy our
    labels, and a ModelDeployment deleted and recreated under the same name has another uid,
    so what the old one left behind is not the new one's either.
    """
    references = child.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid and ref.get("controller") for ref in references)


def controller_of(child: Manifest) -> str:
    """Who controls ``child``, for a message: ``Deployment web (uid 1f2e…)``, or nobody."""
    references = child.get("metadata", {}).get("ownerReferences") or []
    for ref in references:
        if ref.get("controller"):
            return f"{ref.get('kind')} {ref.get('name')} (uid {ref.get('uid')})"
    return "no controller"


def child_name(owner: Owner, variant: Variant) -> str:
    """``iris`` + canary -> ``iris-canary``."""
    return f"{owner.name}-{variant}"


def metadata(owner: Owner, name: str, labels: dict[str, str]) -> Manifest:
    """A child's metadata: in the owner's namespace, labelled and owned by it."""
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": {**MANAGED_BY, LABEL_MD: owner.name, **labels},
        "ownerReferences": [owner_reference(owner)],
    }


def selector(owner: Owner, variant: Variant | None) -> dict[str, str]:
    """Pods of one variant, or of both when ``variant`` is None (the replicas router's split)."""
    labels = {LABEL_MD: owner.name}
    if variant is not None:
        # str(): a label value is plain text, whatever enum the caller holds.
        labels[LABEL_VARIANT] = str(variant)
    return labels
