"""An in-memory ``TrafficRouter`` for tests: it routes nothing and reports the weight it was
last told, so the engine's "observe before scaling" gates still see a consistent world.

The operator has no such router (``spec.traffic.router`` is ``replicas`` or ``gatewayAPI``),
so it lives with the tests.
"""

from __future__ import annotations

from coalmine.k8s import ObjectRef
from coalmine.rollout.types import ChildObservation
from coalmine.routing.base import RouteTarget


class NopRouter:
    def __init__(self) -> None:
        self._weights: dict[tuple[str, str], int] = {}

    def observe(
        self,
        target: RouteTarget,
        stable: ChildObservation | None,
        canary: ChildObservation | None,
    ) -> int | None:
        return self._weights.get((target.owner.namespace, target.owner.name))

    def apply(self, target: RouteTarget, weight: int) -> None:
        self._weights[(target.owner.namespace, target.owner.name)] = weight

    def children(self, target: RouteTarget) -> tuple[ObjectRef, ...]:
        return ()
