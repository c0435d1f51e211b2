"""``spec.runtime``: how the model server pods run."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from coalmine.api.base import ApiModel

# Kubernetes quantities are written as strings ("500m", "1Gi") or plain numbers.
Quantity = Annotated[
    str | int,
    WithJsonSchema(
        {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    ),
]
# Embedded core/v1 types we pass through to the pod unchanged; the API server validates them
# when the Deployment is created, so the CRD does not duplicate their schemas.
PassThrough = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]


class Resources(ApiModel):
    """CPU and memory for the model server container."""

    requests: dict[str, Quantity] = {}
    limits: dict[str, Quantity] = {}


class EnvVar(ApiModel):
    """An environment variable of the model server container (``value`` or ``valueFrom``)."""

    name: Annotated[str, Field(min_length=1, max_length=256)]
    value: str | None = None
    value_from: PassThrough | None = None


class Runtime(ApiModel):
    """The pods that serve each revision."""

    image: Annotated[str | None, Field(max_length=512)] = None
    """Serving image; defaults to the operator's ``defaultServingImage``."""

    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    replicas: Annotated[int, Field(ge=1, le=1000)] = 1
    """Pods of the stable revision (the canary's count follows from the traffic weight)."""

    resources: Resources | None = None
    env: Annotated[list[EnvVar], Field(max_length=128)] = []
    node_selector: dict[str, str] = {}
    tolerations: list[PassThrough] = []
    affinity: PassThrough | None = None
    topology_spread_constraints: list[PassThrough] = []
    priority_class_name: str | None = None
    service_account_name: str | None = None
    """Account for the model pods. Its token is not mounted into the server container."""

    pod_labels: dict[str, str] = {}
    pod_annotations: dict[str, str] = {}
