"""Generate the ModelDeployment CRD from the pydantic models.

The models are the single source of truth; this turns their JSON schema into a Kubernetes
*structural* schema: ``$ref`` inlined, ``Optional`` unwrapped (absent means unset), titles and
``additionalProperties: false`` dropped (the API server rejects unknown fields by itself under
strict field validation), defaults kept only for scalars, CEL rules carried through.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import yaml
from pydantic.json_schema import GenerateJsonSchema

from coalmine.api import resource
from coalmine.api.base import format_duration
from coalmine.api.spec import ModelDeploymentSpec
from coalmine.api.status import ModelDeploymentStatus

PRINTER_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Stable", "type": "string", "jsonPath": ".status.stable.version"},
    {"name": "Canary", "type": "string", "jsonPath": ".status.canary.version"},
    {"name": "Weight", "type": "integer", "jsonPath": ".status.weight"},
    {"name": "Step", "type": "integer", "jsonPath": ".status.currentStep"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {
        "name": "Message",
        "type": "string",
        "jsonPath": ".status.message",
        "priority": 1,
    },
]
_DROPPED_KEYS = {"title", "$defs"}


class _CrdSchemaGenerator(GenerateJsonSchema):
    def encode_default(self, dft: Any) -> Any:
        # Durations default to Go-style text ("30s"), as users write them, not ISO 8601.
        if isinstance(dft, timedelta):
            return format_duration(dft)
        return super().encode_default(dft)


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = dict(defs[node["$ref"].rsplit("/", 1)[1]])
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _inline(merged, defs)
    return {key: _inline(value, defs) for key, value in node.items()}


def _openapi_v30_bounds(node: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema's numeric ``exclusiveMinimum: 0`` becomes OpenAPI 3.0's
    ``minimum: 0, exclusiveMinimum: true``, the only form the API server accepts."""
    out = dict(node)
    for exclusive, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        bound = out.get(exclusive)
        if isinstance(bound, int | float) and not isinstance(bound, bool):
            out[inclusive] = bound
            out[exclusive] = True
    return out


def _structural(node: Any) -> Any:
    if isinstance(node, list):
        return [_structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = _openapi_v30_bounds(_unwrap_optional(node))
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        # `false` (pydantic's extra="forbid") is not structural; the API server rejects
        # unknown fields itself. A schema (a dict[str, X] field) is kept: it types map values.
        if key == "additionalProperties" and isinstance(value, bool):
            continue
        if key == "default" and (value is None or isinstance(value, dict | list)):
            continue
        if key == "properties":
            out[key] = {name: _structural(prop) for name, prop in value.items()}
        else:
            out[key] = _structural(value)
    return out


def _unwrap_optional(node: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, null]`` becomes X: an unset field is simply absent in Kubernetes."""
    variants = node.get("anyOf")
    if not variants:
        return node
    non_null = [v for v in variants if v.get("type") != "null"]
    if len(non_null) == len(variants) or len(non_null) != 1:
        return node
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    return {**non_null[0], **rest}


def object_schema(model: type[Any]) -> dict[str, Any]:
    """The structural schema of one pydantic model."""
    raw = model.model_json_schema(by_alias=True, schema_generator=_CrdSchemaGenerator)
    return _structural(_inline(raw, raw.get("$defs", {})))  # type: ignore[no-any-return]


SCALE = {
    "specReplicasPath": ".spec.runtime.replicas",
    "statusReplicasPath": ".status.replicas",
    "labelSelectorPath": ".status.selector",
}
"""``kubectl scale`` and a HorizontalPodAutoscaler resize the ModelDeployment itself; the
operator sizes stable (and the canary, proportionally) from it, so nobody fights over the
Deployments' replicas."""


def crd() -> dict[str, Any]:
    """The whole CustomResourceDefinition manifest."""
    spec_schema = object_schema(ModelDeploymentSpec)
    # An object default, unlike the generated ones: without it a ModelDeployment that leaves
    # out spec.runtime has no spec.runtime.replicas, and its scale subresource reads 0 (an
    # autoscaler then refuses to act).
    spec_schema["properties"]["runtime"]["default"] = {}
    status_schema = object_schema(ModelDeploymentStatus)
    root = {
        "type": "object",
        "description": "A model served on Kubernetes with safe, analysed canary releases.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{resource.PLURAL}.{resource.GROUP}"},
        "spec": {
            "group": resource.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": resource.KIND,
                "listKind": f"{resource.KIND}List",
                "plural": resource.PLURAL,
                "singular": resource.SINGULAR,
                "shortNames": resource.SHORT_NAMES,
                "categories": resource.CATEGORIES,
            },
            "versions": [
                {
                    "name": resource.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}, "scale": SCALE},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


HEADER = "# Generated by `coalmine crd` from operator/coalmine/api. Do not edit by hand.\n"


def render() -> str:
    """The CRD as the YAML text committed under ``crds/``."""
    body = yaml.safe_dump(crd(), sort_keys=False, width=100, allow_unicode=True)
    return HEADER + body
