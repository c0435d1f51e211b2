"""Cross-field rules, written once and enforced twice: by the API server and offline.

Each rule carries its CEL expression (emitted into the CRD as ``x-kubernetes-validations``) and
the same condition in Python (run by the pydantic models, so ``coalmine validate`` rejects a
manifest exactly as the API server would, without a cluster). A test runs the invalid example
manifests through both and expects the same message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, GetJsonSchemaHandler, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


@dataclass(frozen=True)
class Rule:
    """One validation rule of an API object.

    ``holds`` is None for transition rules (``oldSelf``), which need the stored object and so
    can only be enforced by the API server. ``cel`` is None where the schema already makes the
    API server enforce the rule (a list-map key), so only the offline check needs code.
    """

    cel: str | None
    message: str
    holds: Callable[[Any], bool] | None
    field_path: str | None = None

    def to_cel(self) -> dict[str, str]:
        assert self.cel is not None, "only rules with a CEL form go into the CRD"
        rule = {"rule": self.cel, "message": self.message}
        if self.field_path:
            rule["fieldPath"] = self.field_path
        return rule


class RuleChecked(BaseModel):
    """Mixin: runs the class's ``__rules__`` after field validation."""

    __rules__: Sequence[Rule] = ()

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        cel_rules = [rule.to_cel() for rule in cls.__rules__ if rule.cel is not None]
        if cel_rules:
            target["x-kubernetes-validations"] = cel_rules
        return schema

    @model_validator(mode="after")
    def _check_rules(self) -> Any:
        for rule in type(self).__rules__:
            if rule.holds is not None and not rule.holds(self):
                raise ValueError(rule.message)
        return self
