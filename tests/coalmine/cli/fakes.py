"""An in-memory ``Cluster`` (our own boundary) for the command tests."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from coalmine.cli.cluster import CliError, NotFoundError


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
class FakeCluster:
    namespace: str = "ml"
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    event_list: list[dict[str, Any]] = field(default_factory=list)
    patches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_events: CliError | None = None
    fail_patch: CliError | None = None

    def get(self, name: str) -> dict[str, Any]:
        if name not in self.objects:
            raise NotFoundError(
                f"ModelDeployment {name!r} not found in namespace {self.namespace!r}"
            )
        return copy.deepcopy(self.objects[name])

    def patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.fail_patch is not None:
            raise self.fail_patch
        self.objects[name] = merge_patch(self.get(name), body)
        self.patches.append((name, body))
        return self.get(name)

    def events(self, name: str) -> list[dict[str, Any]]:
        if self.fail_events is not None:
            raise self.fail_events
        return list(self.event_list)
