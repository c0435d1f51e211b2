"""An in-memory ``UserApi`` (our own boundary, from ``coalmine.k8s``) for the command tests."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from coalmine.k8s import KubeError, NotFoundError, ObjectRef


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies it."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass
class FakeUserApi:
    """ModelDeployments by name in one namespace, their Events, and the patches received."""

    namespace: str = "ml"
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    event_list: list[dict[str, Any]] = field(default_factory=list)
    patches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_events: KubeError | None = None
    fail_patch: KubeError | None = None
    fail_read: KubeError | None = None

    def read(self, ref: ObjectRef) -> dict[str, Any]:
        assert ref.kind == "ModelDeployment", ref
        if self.fail_read is not None:
            raise self.fail_read
        if ref.namespace != self.namespace or ref.name not in self.objects:
            raise NotFoundError(404, f'modeldeployments.coalmine.dev "{ref.name}" not found')
        return copy.deepcopy(self.objects[ref.name])

    def merge_patch(self, ref: ObjectRef, patch: dict[str, Any]) -> dict[str, Any]:
        if self.fail_patch is not None:
            raise self.fail_patch
        self.objects[ref.name] = merge_patch(self.read(ref), patch)
        self.patches.append((ref.name, patch))
        return self.read(ref)

    def list_events(self, ref: ObjectRef) -> list[dict[str, Any]]:
        if self.fail_events is not None:
            raise self.fail_events
        return list(self.event_list)
