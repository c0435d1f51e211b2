"""Traffic routers: who enforces the split between stable and canary.

One module per implementation behind the small ``TrafficRouter`` protocol, and a plain
factory. A new router (a mesh, an ingress) is one new file and one line in ``make_router``.
"""

from coalmine.routing.base import RouteTarget, TrafficRouter
from coalmine.routing.factory import make_router

__all__ = ["RouteTarget", "TrafficRouter", "make_router"]
