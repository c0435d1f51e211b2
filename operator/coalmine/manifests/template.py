"""The ``coalmine.dev/template`` annotation: how a revision's pods were built.

Each Deployment records the runtime (and trusted skops types) it was built with, so a later
spec with another runtime can rebuild that revision's pods unchanged: a canary's new env or
image must never leak into stable. The record is compact JSON with sorted keys, so the same
runtime always writes the same text and a re-apply changes nothing.
"""

from __future__ import annotations

import json

from coalmine.api import ModelDeploymentSpec
from coalmine.api.runtime import Runtime

TEMPLATE_ANNOTATION = "coalmine.dev/template"


def template_record(spec: ModelDeploymentSpec) -> str:
    """The annotation's value for pods built from ``spec``."""
    record = {"runtime": spec.runtime.to_manifest(), "trustedTypes": spec.model.trusted_types}
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def spec_for_record(spec: ModelDeploymentSpec, record: str) -> ModelDeploymentSpec:
    """``spec`` with the runtime and trusted types a Deployment's template record holds."""
    data = json.loads(record)
    model = spec.model.model_copy(update={"trusted_types": list(data.get("trustedTypes", []))})
    return spec.model_copy(
        update={"runtime": Runtime.model_validate(data["runtime"]), "model": model}
    )
