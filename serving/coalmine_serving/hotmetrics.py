"""Lock-free counters and histograms for the per-request metrics.

prometheus_client takes a lock and checks arguments on every ``inc``/``observe``: about 1 µs
each, five times per request, which is a measurable share of a ~50 µs request. These hot-path
metrics are only ever updated on the event loop thread (predict results come back to it, and
``/metrics`` is rendered on it too), so plain Python numbers suffice; a custom collector turns
them into ordinary Prometheus families at scrape time. The exposed names, labels and buckets are
exactly the contract's.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from coalmine_serving import contract as c


class LocalCounter:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class LocalHistogram:
    __slots__ = ("_bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = list(bounds)
        self.counts = [0] * (len(self._bounds) + 1)  # last slot is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bucket (le = "less or equal").
        self.counts[bisect_left(self._bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        buckets, running = [], 0
        for bound, count in zip([*self._bounds, float("inf")], self.counts, strict=True):
            running += count
            buckets.append(
                ("+Inf" if bound == float("inf") else repr(float(bound)), float(running))
            )
        return buckets


class HotCollector(Collector):
    """Exposes named groups of local counters and histograms, keyed by extra label values."""

    def __init__(self, base: tuple[str, ...]) -> None:
        self._base = list(base)
        self._counters: list[tuple[c.MetricSpec, dict[str, LocalCounter]]] = []
        self._histograms: list[tuple[c.MetricSpec, LocalHistogram]] = []

    def counter_family(self, spec: c.MetricSpec) -> dict[str, LocalCounter]:
        """Counters for ``spec``, one per value of its single extra label (added on demand)."""
        children: dict[str, LocalCounter] = {}
        self._counters.append((spec, children))
        return children

    def histogram(self, spec: c.MetricSpec, buckets: Sequence[float]) -> LocalHistogram:
        child = LocalHistogram(buckets)
        self._histograms.append((spec, child))
        return child

    def collect(self) -> Iterator[Metric]:
        for spec, children in self._counters:
            family = CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
            for extra, counter in list(children.items()):
                family.add_metric([*self._base, extra], counter.value)
            yield family
        for spec, hist in self._histograms:
            yield self._histogram_family(spec, hist)

    def _histogram_family(self, spec: c.MetricSpec, hist: LocalHistogram) -> Metric:
        # Built sample by sample: HistogramMetricFamily drops _sum and _count when a bucket is
        # negative (an OpenMetrics rule), but regressor outputs need negative buckets and the
        # operator needs _count for rates.
        family = Metric(spec.name, spec.help, "histogram")
        labels = dict(zip(spec.labels, self._base, strict=True))
        for le, cumulative in hist.cumulative():
            family.add_sample(f"{spec.name}_bucket", {**labels, "le": le}, cumulative)
        family.add_sample(f"{spec.name}_count", labels, float(hist.count))
        family.add_sample(f"{spec.name}_sum", labels, hist.sum)
        return family


class OriginSeries(Collector):
    """Feedback series keyed by the ORIGIN of each prediction (version, variant, revision, read
    from its receipt), not by this pod: a label for the canary's prediction may reach a stable
    pod, and must count for the canary.

    Such series appear while the server runs, and Prometheus' ``increase()`` takes a series'
    first sample as its baseline, so counts that arrive with a new series would be lost. A new
    series is therefore exposed at zero on its first scrape and with its counts from the next
    one on. Distinct origins are capped (the oldest series is dropped first); only receipts
    this deployment signed create one, so a client cannot add series.
    """

    def __init__(
        self, counter: c.MetricSpec, histogram: c.MetricSpec, model: str, buckets: Sequence[float]
    ) -> None:
        self._counter, self._histogram = counter, histogram
        self._model = model
        self._buckets = list(buckets)
        self._counts: dict[tuple[str, ...], dict[str, LocalCounter]] = {}
        self._errors: dict[tuple[str, ...], LocalHistogram] = {}
        self._shown: set[tuple[str, ...]] = set()

    def count(self, origin: tuple[str, ...], result: str, amount: float) -> None:
        children = self._counts.get(origin)
        if children is None:
            self._make_room(self._counts)
            children = self._counts[origin] = {}
        children.setdefault(result, LocalCounter()).inc(amount)

    def errors(self, origin: tuple[str, ...]) -> LocalHistogram:
        child = self._errors.get(origin)
        if child is None:
            self._make_room(self._errors)
            child = self._errors[origin] = LocalHistogram(self._buckets)
        return child

    def _make_room(self, series: dict[tuple[str, ...], Any]) -> None:
        while len(series) >= c.MAX_FEEDBACK_ORIGINS:
            oldest = next(iter(series))
            del series[oldest]
            self._shown.discard(oldest)

    def collect(self) -> Iterator[Metric]:
        shown, results = self._shown, [result.value for result in c.FeedbackResult]
        counts = CounterMetricFamily(
            self._counter.name, self._counter.help, labels=self._counter.labels
        )
        for origin, children in list(self._counts.items()):
            for result in results:
                value = children.get(result)
                total = value.value if value is not None and origin in shown else 0.0
                counts.add_metric([self._model, *origin, result], total)
        yield counts
        family = Metric(self._histogram.name, self._histogram.help, "histogram")
        for origin, hist in list(self._errors.items()):
            labels = dict(zip(self._histogram.labels, (self._model, *origin), strict=True))
            fresh = origin not in shown
            for le, cumulative in hist.cumulative():
                family.add_sample(
                    f"{family.name}_bucket", {**labels, "le": le}, 0.0 if fresh else cumulative
                )
            family.add_sample(f"{family.name}_count", labels, 0.0 if fresh else float(hist.count))
            family.add_sample(f"{family.name}_sum", labels, 0.0 if fresh else hist.sum)
        yield family
        shown.update(self._counts, self._errors)
