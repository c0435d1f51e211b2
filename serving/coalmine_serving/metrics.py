"""The contract's metrics, bound to this pod's model/version/variant labels once.

Each app gets its own registry, so several apps (tests, benchmarks) can live in one process.
Per-request metrics are lock-free (:mod:`coalmine_serving.hotmetrics`); the rest are ordinary
prometheus_client collectors with their children bound up front.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from coalmine_serving import contract as c
from coalmine_serving.hotmetrics import HotCollector, LocalCounter, OriginSeries
from coalmine_serving.settings import ServingSettings, Task


def _collector(spec: c.MetricSpec, registry: CollectorRegistry, **kwargs: Any) -> Any:
    if spec.kind is c.MetricKind.COUNTER:
        return Counter(spec.name, spec.help, spec.labels, registry=registry)
    if spec.kind is c.MetricKind.GAUGE:
        return Gauge(spec.name, spec.help, spec.labels, registry=registry)
    buckets = kwargs.get("buckets") or spec.buckets
    return Histogram(spec.name, spec.help, spec.labels, registry=registry, buckets=buckets)


class ServingMetrics:
    def __init__(self, settings: ServingSettings) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        reg = self.registry
        base = (
            settings.model_name,
            settings.model_version,
            settings.variant.value,
            settings.revision,
        )
        self._base = base
        hot = HotCollector(base)
        reg.register(hot)
        requests = hot.counter_family(c.REQUESTS_TOTAL)
        # Every outcome exists from the start at 0, so rate() over a fresh pod is 0, not absent.
        self.outcomes = {o: requests.setdefault(o.value, LocalCounter()) for o in c.Outcome}
        self.duration = hot.histogram(c.REQUEST_DURATION, c.REQUEST_DURATION.buckets)
        self.compute = hot.histogram(c.MODEL_COMPUTE, c.MODEL_COMPUTE.buckets)
        self._in_flight = _collector(c.REQUESTS_IN_FLIGHT, reg).labels(*base)
        self._info = _collector(c.MODEL_INFO, reg)
        self.ready = _collector(c.MODEL_READY, reg).labels(*base)
        self.load_seconds = _collector(c.MODEL_LOAD_SECONDS, reg).labels(*base)
        self._class_children = hot.counter_family(c.PREDICTIONS_TOTAL)
        self.prediction_value = hot.histogram(c.PREDICTION_VALUE, settings.prediction_buckets)
        self._inputs = hot.feature_histograms(c.INPUT_FEATURE, settings.input_features)
        self.feedback = OriginSeries(
            c.FEEDBACK_TOTAL, c.FEEDBACK_ABS_ERROR, settings.model_name, settings.abs_error_buckets
        )
        reg.register(self.feedback)
        unmatched = _collector(c.FEEDBACK_UNMATCHED_TOTAL, reg)
        self.unmatched = {r: unmatched.labels(*base, r.value) for r in c.FeedbackMissReason}
        faults = _collector(c.INJECTED_FAULTS_TOTAL, reg)
        self.faults = {kind: faults.labels(*base, kind) for kind in ("error", "latency")}
        self.shadow = ShadowCounters(reg, base)
        self.ready.set(0)

    def track_in_flight(self, read: Callable[[], float]) -> None:
        """Read the in-flight count at scrape time instead of two locked updates per request."""
        self._in_flight.set_function(read)

    def model_loaded(self, fmt: str, sha256: str, seconds: float) -> None:
        self._info.labels(*self._base, fmt, sha256).set(1)
        self.load_seconds.set(seconds)
        self.ready.set(1)

    def record_outputs(self, task: Task, outputs: np.ndarray) -> None:
        """One prediction metric per row: its class for a classifier, its value for a regressor."""
        if task is Task.CLASSIFICATION:
            self.record_classes(outputs)
        else:
            self.record_values(outputs)

    def record_inputs(self, rows: np.ndarray) -> None:
        """Bucket the ``--input-features`` columns of a request's rows (nothing when unset)."""
        self._inputs.observe_rows(rows)

    def record_classes(self, outputs: np.ndarray) -> None:
        if len(outputs) <= 16:
            # A Python loop beats np.unique's sort and allocations for the usual 1-row request.
            for label in outputs.tolist():
                self._class_child(str(label)).inc()
            return
        labels, counts = np.unique(outputs, return_counts=True)
        for label, count in zip(labels.tolist(), counts.tolist(), strict=True):
            self._class_child(str(label)).inc(count)

    def record_values(self, outputs: np.ndarray) -> None:
        for value in np.asarray(outputs, dtype=np.float64).ravel().tolist():
            self.prediction_value.observe(value)

    def _class_child(self, label: str) -> LocalCounter:
        child = self._class_children.get(label)
        if child is None:
            # Cap distinct label values: a model emitting free-form strings must not be able to
            # create unbounded series in Prometheus.
            if len(self._class_children) >= c.MAX_CLASS_LABEL_VALUES:
                label = c.OTHER_CLASS
            child = self._class_children.setdefault(label, LocalCounter())
        return child


class ShadowCounters:
    """The shadow metrics of a stable pod that mirrors: a child per canary revision and
    result, made on first use (a pod sees one canary revision at a time)."""

    def __init__(self, registry: CollectorRegistry, base: tuple[str, ...]) -> None:
        self._base = base
        self._compared = _collector(c.SHADOW_COMPARED_TOTAL, registry)
        self._abs_diff = _collector(c.SHADOW_ABS_DIFF_TOTAL, registry)
        self._mirrored = _collector(c.SHADOW_MIRRORED_TOTAL, registry)

    def mirrored(self, revision: str, result: c.MirrorResult) -> None:
        self._mirrored.labels(*self._base, revision, result.value).inc()

    def compared(self, revision: str, agreed: int, disagreed: int, abs_diff: float) -> None:
        self._compared.labels(*self._base, revision, c.ShadowResult.AGREE.value).inc(agreed)
        self._compared.labels(*self._base, revision, c.ShadowResult.DISAGREE.value).inc(disagreed)
        self._abs_diff.labels(*self._base, revision).inc(abs_diff)
