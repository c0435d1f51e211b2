"""Pod math of the ``replicas`` router: one Service spans both Deployments, so the share of
traffic the canary gets is the share of ready pods it has.

Rounding is half-up (``floor(x + 0.5)``), not Python's banker's rounding, so the numbers in
these docstrings are what a person computes by hand. The router's adapter and its client
Service are ``coalmine.routing.replicas``.
"""

from __future__ import annotations

import math


def round_half_up(x: float) -> int:
    """Round to the nearest integer, halves up.

    >>> round_half_up(2.5), round_half_up(4.285), round_half_up(0.49)
    (3, 4, 0)
    """
    return math.floor(x + 0.5)


def canary_replicas_beside(stable: int, weight: int) -> int:
    """``replicas`` router, stable kept at full capacity: canary pods so that
    ``canary / (canary + stable)`` is as close as possible to ``weight`` percent.

    At least one pod when the weight is above 0; never more than needed for 100%.

    >>> canary_replicas_beside(10, 30)   # 10 * 30 / 70 = 4.29 -> 4 (4/14 = 29% of traffic)
    4
    >>> canary_replicas_beside(10, 50)
    10
    >>> canary_replicas_beside(3, 10)    # 0.33 -> 0, but a weight above 0 gets one pod (25%)
    1
    >>> canary_replicas_beside(10, 0)
    0
    >>> canary_replicas_beside(4, 100)   # all traffic: as many pods as stable
    4
    """
    if weight <= 0:
        return 0
    if weight >= 100:
        return stable
    return max(1, round_half_up(stable * weight / (100 - weight)))


def split_total(total: int, weight: int) -> tuple[int, int]:
    """``replicas`` router with ``scaleDownStable``: share ``total`` pods as (stable, canary).

    Each side keeps at least one pod while it serves (weight strictly between 0 and 100).

    >>> split_total(10, 30)
    (7, 3)
    >>> split_total(1, 10)    # one pod cannot be shared: the canary still needs one
    (1, 1)
    >>> split_total(10, 0), split_total(10, 100)
    ((10, 0), (0, 10))
    """
    if weight <= 0:
        return total, 0
    if weight >= 100:
        return 0, total
    canary = min(max(1, round_half_up(total * weight / 100)), max(total - 1, 1))
    return max(total - canary, 1), canary


def split(total: int, weight: int, scale_down_stable: bool = False) -> tuple[int, int]:
    """(stable, canary) pods for ``total`` = ``spec.runtime.replicas`` at ``weight`` percent:
    stable keeps all its pods unless ``scaleDownStable`` shares them with the canary.

    >>> split(10, 30)
    (10, 4)
    >>> split(10, 30, scale_down_stable=True)
    (7, 3)
    """
    if scale_down_stable:
        return split_total(total, weight)
    return total, canary_replicas_beside(total, weight)


def observed_weight(stable_ready: int, canary_ready: int, selector_spans_both: bool) -> int:
    """The weight the ``replicas`` router really applies, from ready pods.

    >>> observed_weight(10, 4, True)
    29
    >>> observed_weight(10, 4, False)   # Service selects stable only: canary gets nothing
    0
    >>> observed_weight(0, 0, True)
    0
    """
    ready = stable_ready + canary_ready
    if not selector_spans_both or ready == 0:
        return 0
    return round_half_up(100 * canary_ready / ready)


def expected_weight(total: int, weight: int, scale_down_stable: bool = False) -> int:
    """The weight the Service will be observed at once ``weight`` is applied and all planned
    pods are ready: the ready-pod ratio, not the weight asked for.

    >>> expected_weight(4, 10)     # 4 stable + 1 canary: 20%, not 10%
    20
    >>> expected_weight(10, 30)
    29
    """
    stable, canary = split(total, weight, scale_down_stable)
    return observed_weight(stable, canary, selector_spans_both=weight > 0)
