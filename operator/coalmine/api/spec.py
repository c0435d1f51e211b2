"""The ModelDeployment spec: the whole desired state in one place."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Self

from coalmine.api.base import ApiModel
from coalmine.api.canary import CanaryStrategy, RollbackPolicy, Step
from coalmine.api.feedback import Feedback
from coalmine.api.model import ModelSource
from coalmine.api.rules import Rule, RuleChecked
from coalmine.api.runtime import Runtime
from coalmine.api.traffic import Traffic

DEFAULT_STEPS = (Step(weight=10), Step(weight=50))
_ROUTER = "(has({o}.traffic) && has({o}.traffic.router) ? {o}.traffic.router : 'replicas')"


class ModelDeploymentSpec(ApiModel, RuleChecked):
    """Desired state of a ModelDeployment."""

    model: ModelSource
    runtime: Runtime = Runtime()
    traffic: Traffic = Traffic()
    canary: CanaryStrategy = CanaryStrategy(steps=list(DEFAULT_STEPS))
    paused: bool = False
    """Hold the rollout where it is: no step advances, nothing is promoted or rolled back
    automatically (a person can still abort)."""

    rollback: RollbackPolicy = RollbackPolicy()
    feedback: Feedback = Feedback()
    """Delayed labels: how long a receipt stays redeemable. Not part of the revision: changing
    it restarts the pods in place (a rolling update), it starts no canary."""

    # Transition rules sit here, not on `traffic`, because CEL compares with oldSelf only
    # where the old object had the field: an omitted `traffic` means the default router.
    __rules__ = (
        Rule(
            cel=f"{_ROUTER.format(o='self')} == {_ROUTER.format(o='oldSelf')}",
            message="spec.traffic.router: immutable; create a new ModelDeployment to change it",
            holds=None,
            field_path=".traffic.router",
        ),
        Rule(
            cel="self.model.name == oldSelf.model.name",
            message="spec.model.name: immutable; clients address the model by this name",
            holds=None,
            field_path=".model.name",
        ),
    )

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("_revision", None)
        return copy

    def revision(self) -> str:
        """Identity of what a pod runs: the model and the pod template, not traffic or
        analysis settings (changing a threshold must not start a new canary).

        The same inputs always give the same 10 hex digits, so the revision survives restarts
        and can name child objects.
        """
        return self._revision

    @functools.cached_property
    def _revision(self) -> str:
        # Once per spec (it is frozen): a tick asks for it several times. ``model_copy``
        # below drops it from a copy, whose update may change the model or the runtime.
        template = {
            "model": self.model.to_manifest(),
            # Scaling is not a new revision: replicas change in place, without a canary.
            "runtime": self.runtime.model_dump(mode="json", by_alias=True, exclude={"replicas"}),
        }
        canonical = json.dumps(template, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:10]
