"""Replica arithmetic: how many pods each side runs for a traffic weight, per router.

Each router's pure pod math is one module here (``replicas``, ``gatewayapi``), registered once
in ``POD_MATH``; its adapter and manifest builders are the module of the same name in
``coalmine.routing``. The engine plans with ``plan_replicas`` and ``expected_weight`` and so
never imports the routers themselves, which talk to the API server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from coalmine.api.traffic import RouterKind
from coalmine.rollout.pods import gatewayapi, replicas


@dataclass(frozen=True)
class PodMath:
    """A router's arithmetic, as functions of (total pods, weight, ``scaleDownStable``)."""

    split: Callable[[int, int, bool], tuple[int, int]]
    """(stable, canary) pods for the weight."""
    expected_weight: Callable[[int, int, bool], int]
    """The weight the router will be observed at once all planned pods are ready."""


POD_MATH: Mapping[RouterKind, PodMath] = {
    RouterKind.REPLICAS: PodMath(replicas.split, replicas.expected_weight),
    RouterKind.GATEWAY_API: PodMath(gatewayapi.split, gatewayapi.expected_weight),
}


def plan_replicas(
    total: int, weight: int, router: RouterKind, scale_down_stable: bool = False
) -> tuple[int, int]:
    """(stable, canary) pods for ``total`` = ``spec.runtime.replicas`` at ``weight`` percent.

    >>> plan_replicas(10, 30, RouterKind.REPLICAS)
    (10, 4)
    >>> plan_replicas(10, 30, RouterKind.REPLICAS, scale_down_stable=True)
    (7, 3)
    >>> plan_replicas(10, 30, RouterKind.GATEWAY_API)
    (10, 3)
    """
    return POD_MATH[router].split(total, weight, scale_down_stable)


def expected_weight(
    total: int, weight: int, router: RouterKind, scale_down_stable: bool = False
) -> int:
    """The weight the router will be observed at once ``weight`` is applied and all planned
    pods are ready: exact for ``gatewayAPI``, the ready-pod ratio for ``replicas``.

    >>> expected_weight(4, 10, RouterKind.REPLICAS)     # 4 stable + 1 canary: 20%, not 10%
    20
    >>> expected_weight(10, 30, RouterKind.REPLICAS)
    29
    >>> expected_weight(4, 10, RouterKind.GATEWAY_API)
    10
    """
    return POD_MATH[router].expected_weight(total, weight, scale_down_stable)
