"""The ``coalmine.dev/template`` annotation: how a revision's pods were built; and
``coalmine.dev/revision-ref``: which revision they run (model version, URI, sha256), so a lost
status can be rebuilt from the Deployments instead of shipping the spec to stable.

Each Deployment records the runtime (and trusted skops types, and the ``s3`` source settings
when there are any) it was built with, so a later spec with another runtime can rebuild that
revision's pods unchanged: a canary's new env, image or S3 Secret must never leak into stable.
The record is compact JSON with sorted keys, so the same runtime always writes the same text
and a re-apply changes nothing.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from coalmine.api import ModelDeploymentSpec, RevisionRef
from coalmine.api.model import S3Source
from coalmine.api.runtime import Runtime

TEMPLATE_ANNOTATION = "coalmine.dev/template"
REVISION_ANNOTATION = "coalmine.dev/revision-ref"


def template_record(spec: ModelDeploymentSpec) -> str:
    """The annotation's value for pods built from ``spec``."""
    record = {"runtime": spec.runtime.to_manifest(), "trustedTypes": spec.model.trusted_types}
    if spec.model.s3 is not None:  # only then: older records stay byte for byte the same
        record["s3"] = spec.model.s3.to_manifest()
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def spec_for_record(spec: ModelDeploymentSpec, record: str) -> ModelDeploymentSpec:
    """``spec`` with the runtime, trusted types and S3 settings a Deployment's template record
    holds (no ``s3`` in the record: that revision had none)."""
    data = json.loads(record)
    s3 = S3Source.model_validate(data["s3"]) if data.get("s3") else None
    update = {"trusted_types": list(data.get("trustedTypes", [])), "s3": s3}
    model = spec.model.model_copy(update=update)
    return spec.model_copy(
        update={"runtime": Runtime.model_validate(data["runtime"]), "model": model}
    )


def revision_record(revision: RevisionRef) -> str:
    """The ``coalmine.dev/revision-ref`` annotation's value: the revision a Deployment runs,
    compact JSON with sorted keys (the same revision always writes the same text)."""
    return json.dumps(revision.to_manifest(), sort_keys=True, separators=(",", ":"))


def revision_from_record(record: str | None, label: str | None) -> RevisionRef | None:
    """The revision a Deployment's annotation records, if it is readable and agrees with its
    ``coalmine.dev/revision`` label (a hand-edited or half-written record is no evidence)."""
    if not record or not label:
        return None
    try:
        revision = RevisionRef.model_validate(json.loads(record))
    except (ValueError, ValidationError):
        return None
    return revision if revision.revision == label else None
