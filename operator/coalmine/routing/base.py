"""The ``TrafficRouter`` protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from coalmine.api import ModelDeploymentSpec
from coalmine.k8s import ObjectRef
from coalmine.manifests import Owner
from coalmine.rollout.types import ChildObservation


@dataclass(frozen=True)
class RouteTarget:
    """What a router needs to know about the ModelDeployment it routes for."""

    owner: Owner
    spec: ModelDeploymentSpec


class TrafficRouter(Protocol):
    """Reads and sets the canary's share of traffic, in percent."""

    def observe(
        self,
        target: RouteTarget,
        stable: ChildObservation | None,
        canary: ChildObservation | None,
    ) -> int | None:
        """The weight really applied now; None when the routing object does not exist."""
        ...

    def apply(self, target: RouteTarget, weight: int) -> None:
        """Make the routing objects send ``weight`` percent to the canary (idempotent)."""
        ...

    def children(self, target: RouteTarget) -> tuple[ObjectRef, ...]:
        """Every object ``apply`` writes: the operator checks each is ours before a tick."""
        ...
