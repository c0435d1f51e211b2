"""Pure builders of the children of a ModelDeployment, one module per concern.

No I/O: each function maps the spec (and the revision a child must run) to the dict that is
server-side applied.

- ``labels``: the ``Manifest`` type, the owner, child names, labels and selectors
- ``template``: the ``coalmine.dev/template`` annotation (how a revision's pods were built)
- ``deployment``: the Deployment and its pod; ``containers`` and ``artifact`` build its parts
- ``services``: the ClusterIP Service every router puts in front of the pods
- ``receiptkeys``: the receipt-key Secret and the rules of its keys (imported as a module by
  ``coalmine.receipts``; the pods only need its mount path and volume name)

The routers' own objects (the client Service, the HTTPRoute) are built by the routers in
``coalmine.routing``. The names below are the package's surface for the rest of the operator.
"""

from coalmine.manifests.containers import SERVING_PORT, server_args
from coalmine.manifests.deployment import deployment, pod_spec
from coalmine.manifests.labels import (
    LABEL_MD,
    LABEL_MODEL,
    LABEL_REVISION,
    LABEL_VARIANT,
    LABEL_VERSION,
    MANAGED_BY,
    Manifest,
    Owner,
    Variant,
    child_name,
    controller_of,
    metadata,
    owned_by,
    owner_reference,
    selector,
)
from coalmine.manifests.services import service
from coalmine.manifests.template import (
    REVISION_ANNOTATION,
    TEMPLATE_ANNOTATION,
    revision_from_record,
    spec_for_record,
    template_record,
)

__all__ = [
    "LABEL_MD",
    "LABEL_MODEL",
    "LABEL_REVISION",
    "LABEL_VARIANT",
    "LABEL_VERSION",
    "MANAGED_BY",
    "REVISION_ANNOTATION",
    "SERVING_PORT",
    "TEMPLATE_ANNOTATION",
    "Manifest",
    "Owner",
    "Variant",
    "child_name",
    "controller_of",
    "deployment",
    "metadata",
    "owned_by",
    "owner_reference",
    "pod_spec",
    "revision_from_record",
    "selector",
    "server_args",
    "service",
    "spec_for_record",
    "template_record",
]
