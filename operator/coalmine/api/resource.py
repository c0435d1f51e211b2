"""The ModelDeployment resource as a whole, and its identity in the Kubernetes API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from coalmine.api.spec import ModelDeploymentSpec
from coalmine.api.status import ModelDeploymentStatus

GROUP = "coalmine.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
SINGULAR = "modeldeployment"
SHORT_NAMES = ["mdep", "mdeploy"]
CATEGORIES = ["coalmine"]


class ObjectMeta(BaseModel):
    """The parts of metadata we read; the rest passes through untouched."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    namespace: str | None = None
    generation: int | None = None
    annotations: dict[str, str] = {}
    labels: dict[str, str] = {}


class ModelDeployment(BaseModel):
    """A ModelDeployment as read from a manifest or the API server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_version: Literal["coalmine.dev/v1alpha1"]
    kind: Literal["ModelDeployment"]
    metadata: ObjectMeta
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus | None = None

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> ModelDeployment:
        """Parse a manifest dict (``apiVersion`` and ``kind`` as in YAML)."""
        body = dict(manifest)
        body["api_version"] = body.pop("apiVersion", None)
        return cls.model_validate(body)
