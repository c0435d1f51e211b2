"""Offline validation of ModelDeployment manifests with the same models the operator uses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from coalmine.api.resource import KIND, ModelDeployment


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one manifest."""

    source: str
    name: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}: {KIND}/{self.name}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


def field_path(loc: Iterable[int | str]) -> str:
    """``("spec", "canary", "steps", 1, "weight")`` -> ``spec.canary.steps[1].weight``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not part.startswith(("function-", "json-or-python")):
            path += f".{part}" if path else part
    return path


def check_manifest(manifest: dict[str, Any], source: str) -> list[Problem]:
    """Every problem of one ModelDeployment manifest (empty when it is valid)."""
    name = str((manifest.get("metadata") or {}).get("name", "?"))
    try:
        ModelDeployment.from_manifest(manifest)
    except ValidationError as error:
        return [_problem(source, name, detail) for detail in error.errors()]
    return []


def _problem(source: str, name: str, detail: Any) -> Problem:
    message = str(detail["msg"]).removeprefix("Value error, ")
    loc = ["apiVersion" if part == "api_version" else part for part in detail["loc"]]
    path = field_path(loc)
    # Our cross-field rules already name their field ("spec.canary.steps: ..."), like the
    # API server's CEL messages; do not print the path twice.
    if message.startswith("spec."):
        return Problem(source, name, "", message)
    return Problem(source, name, path, message)


def manifests_in(text: str) -> Iterator[dict[str, Any]]:
    """The ModelDeployment documents of a (multi-document) YAML text."""
    for document in yaml.safe_load_all(text):
        if isinstance(document, dict) and document.get("kind") == KIND:
            yield document
