"""Metric analysis: PromQL built from the serving metric contract, one Prometheus provider.

``measure_checks`` turns the spec's checks into the engine's ``Measurement`` values. Provider
failures (timeout, connection refused, bad query), empty results and NaN all become data
(``SideMeasurement.error`` or ``value=None``), never exceptions: the engine makes them
inconclusive, and inconclusive never promotes.
"""

from coalmine.analysis.measure import measure_checks
from coalmine.analysis.provider import MetricProvider, QueryResult, Sample
from coalmine.analysis.scope import Scope, SideScope

__all__ = ["MetricProvider", "QueryResult", "Sample", "Scope", "SideScope", "measure_checks"]
