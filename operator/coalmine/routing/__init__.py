"""Traffic routers: who enforces the split between stable and canary.

One module per implementation behind the small ``TrafficRouter`` protocol, each with the
manifest builders of the objects it routes with, and a plain factory. A router's pure pod
math (how many pods each side runs, what weight that gives) is the module of the same name in
``coalmine.rollout.pods``, where the pure engine can plan with it. A new router (a mesh, an
ingress) is its module here, its pod math there, and one line in each registry
(``ROUTERS`` in ``factory``, ``POD_MATH`` in ``coalmine.rollout.pods``).
"""

from coalmine.routing.base import RouteTarget, TrafficRouter
from coalmine.routing.factory import make_router

__all__ = ["RouteTarget", "TrafficRouter", "make_router"]
