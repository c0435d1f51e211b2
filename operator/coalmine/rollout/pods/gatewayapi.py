"""Pod math of the ``gatewayAPI`` router: the HTTPRoute splits traffic exactly, so the canary
only needs enough pods for its share of the load and stable keeps all of its own.

Its adapter and builders (the variant Services, the HTTPRoute) are ``coalmine.routing.gatewayapi``.
"""

from __future__ import annotations

import math


def canary_replicas(stable: int, weight: int) -> int:
    """Pods the canary needs for ``weight`` percent of the load stable's pods carry.

    >>> canary_replicas(10, 30)   # ceil(3.0)
    3
    >>> canary_replicas(10, 5)    # ceil(0.5): one pod
    1
    >>> canary_replicas(10, 0)
    0
    """
    if weight <= 0:
        return 0
    return max(1, math.ceil(stable * min(weight, 100) / 100))


def split(total: int, weight: int, scale_down_stable: bool = False) -> tuple[int, int]:
    """(stable, canary) pods; stable keeps ``total`` (``scaleDownStable`` is for ``replicas``).

    >>> split(10, 30)
    (10, 3)
    """
    return total, canary_replicas(total, weight)


def expected_weight(total: int, weight: int, scale_down_stable: bool = False) -> int:
    """The route applies the weight exactly, whatever the pod counts.

    >>> expected_weight(4, 10)
    10
    """
    return weight
