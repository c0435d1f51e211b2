"""Metric analysis: PromQL built from the serving metric contract, one Prometheus provider.

``measure_checks`` turns the spec's checks into the engine's ``Measurement`` values. Provider
failures (timeout, connection refused, bad query), empty results and NaN all become data
(``SideMeasurement.error`` with its ``problem``, or ``value=None``), never exceptions: the
engine makes them inconclusive, and inconclusive never promotes. ``choose_endpoint`` picks the
Prometheus from the operator's list; custom PromQL is scoped to the namespace (``scoping``).
"""

from coalmine.analysis.endpoints import Endpoint, EndpointNotAllowedError, choose_endpoint
from coalmine.analysis.measure import measure_checks, refused_checks
from coalmine.analysis.provider import MetricProvider, QueryResult, Sample
from coalmine.analysis.scope import Scope, SideScope

__all__ = [
    "Endpoint",
    "EndpointNotAllowedError",
    "MetricProvider",
    "QueryResult",
    "Sample",
    "Scope",
    "SideScope",
    "choose_endpoint",
    "measure_checks",
    "refused_checks",
]
