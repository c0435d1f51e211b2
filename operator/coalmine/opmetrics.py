"""The operator's own Prometheus metrics (``/metrics`` on ``metricsPort``).

One object, :class:`OperatorMetrics`, owns every series; the rest of the operator calls a
few methods on it at the places where things happen (a tick ran, a status was written), and
those methods work out what changed from the old and new status, so the hooks stay one line.

Labels are bounded: ``namespace``/``name`` appear only on series that are about one
ModelDeployment (rollouts, weight, check values) and are removed when the object is deleted;
``check`` is a check's name from the spec (at most a few per object). No revision hash, no
reason text and no error message is ever a label. The table of names is in docs/operator.md.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from datetime import datetime
from typing import TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from coalmine import __version__
from coalmine.api.checks import Check
from coalmine.api.spec import ModelDeploymentSpec
from coalmine.api.status import ModelDeploymentStatus

RESULTS = ("promoted", "rolled_back", "aborted", "superseded", "failed")
"""``coalmine_rollouts_total``'s ``result``: how a revision's rollout ended (its Outcome)."""
_RESULT_OF = {
    "Promoted": "promoted",
    "RolledBack": "rolled_back",
    "Aborted": "aborted",
    "Superseded": "superseded",
    "Failed": "failed",
}
ERROR_KINDS = ("api", "invalid_spec", "blocked", "metrics_provider", "unexpected")
"""``coalmine_reconcile_errors_total``'s ``kind``."""
VERDICTS = ("pass", "fail", "inconclusive")

# Steps last minutes to hours; a measurement a few ms to the analysis budget (20 s).
_STEP_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600, 86400)
_FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)

_M = TypeVar("_M", Gauge, Counter)
Key = tuple[str, str]
"""(namespace, name) of one ModelDeployment."""


class OperatorMetrics:
    """Every operator series, registered into one registry (the default one in the process;
    a fresh one per unit test)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        def counter(name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
            return Counter(name, doc, list(labels), registry=registry)

        def gauge(name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
            return Gauge(name, doc, list(labels), registry=registry)

        self.build_info = gauge("coalmine_build_info", "Always 1.", ("version", "python"))
        self.build_info.labels(__version__, platform.python_version()).set(1)
        self.leader = gauge("coalmine_leader", "1 when this process is the one acting.")
        self.leader.set(1)  # standalone: the only operator is the acting one
        self.ticks = counter("coalmine_ticks", "Reconciles run (all objects).")
        self.tick_duration = Histogram(
            "coalmine_tick_duration_seconds", "Wall time of one reconcile.",
            buckets=_FAST_BUCKETS, registry=registry,
        )  # fmt: skip
        self.tick_lag = Histogram(
            "coalmine_tick_lag_seconds",
            "How late a reconcile started after it was due (or after the event that asked).",
            buckets=_FAST_BUCKETS, registry=registry,
        )  # fmt: skip
        self.errors = counter(
            "coalmine_reconcile_errors", "Reconciles that ended in an error, by kind.", ("kind",)
        )
        for kind in ERROR_KINDS:
            self.errors.labels(kind)  # present at 0, so increase() sees the first one
        self.objects = gauge("coalmine_modeldeployments", "ModelDeployments this process ticks.")
        self.rollouts = counter(
            "coalmine_rollouts", "Rollouts ended, by result.", ("namespace", "name", "result")
        )
        self.step_duration = Histogram(
            "coalmine_step_duration_seconds", "How long a canary step lasted.",
            buckets=_STEP_BUCKETS, registry=registry,
        )  # fmt: skip
        self.analysis_duration = Histogram(
            "coalmine_analysis_duration_seconds",
            "Wall time of one measurement (every check of a tick, queried at once).",
            buckets=_FAST_BUCKETS, registry=registry,
        )  # fmt: skip
        self.verdicts = counter(
            "coalmine_verdicts", "Check verdicts, by check kind and outcome.", ("kind", "verdict")
        )
        self.weight = gauge(
            "coalmine_weight",
            "Percent of traffic on each variant.",
            ("namespace", "name", "variant"),
        )
        self.check_value = gauge(
            "coalmine_check_value",
            "A check's last measured value, per variant.",
            ("namespace", "name", "check", "variant"),
        )
        self.check_threshold = gauge(
            "coalmine_check_threshold",
            "A check's absolute limit (max or min); none for checks judged only against stable.",
            ("namespace", "name", "check", "bound"),
        )
        self.inconclusive_since = gauge(
            "coalmine_analysis_inconclusive_since_timestamp_seconds",
            "Since when the analysis has been inconclusive for want of data (absent: it is not).",
            ("namespace", "name"),
        )
        self.info = gauge(
            "coalmine_modeldeployment_info",
            "Always 1: the model name (the serving metrics' `model` label) of a ModelDeployment.",
            ("namespace", "name", "model"),
        )
        # The label sets each object put on the per-object series, to remove them with it.
        self._owned: dict[Key, set[tuple[Gauge | Counter, tuple[str, ...]]]] = {}

    def set_leader(self, leading: bool) -> None:
        """For leader election: 1 while this process acts, 0 while it stands by."""
        self.leader.set(1 if leading else 0)

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()

    def seen(self, key: Key) -> None:
        """First tick of an object: its rollout counters start at 0, so the first rollback is
        an increase Prometheus can see (a series born at 1 has no increase)."""
        if key in self._owned:
            return
        self._owned[key] = set()
        for result in RESULTS:
            self._own(key, self.rollouts, (*key, result))
        self.objects.set(len(self._owned))

    def forget(self, key: Key) -> None:
        """The object is gone: so are its series."""
        for metric, labels in self._owned.pop(key, set()):
            metric.remove(*labels)
        self.objects.set(len(self._owned))

    def written(
        self,
        key: Key,
        old: ModelDeploymentStatus,
        new: ModelDeploymentStatus,
        spec: ModelDeploymentSpec,
        now: datetime,
    ) -> None:
        """A tick wrote ``new`` over ``old``: count what ended, time what finished."""
        self.seen(key)
        self._only(key, self.info, {(*key, spec.model.name): 1.0})
        for entry in new.history:
            if entry not in old.history:
                self._own(key, self.rollouts, (*key, _RESULT_OF[entry.outcome])).inc()
        if _step_ended(old, new) and old.step_started_at is not None:
            self.step_duration.observe(max(0.0, (now - old.step_started_at).total_seconds()))
        canary = new.applied_weight if new.applied_weight is not None else new.weight
        canary = canary if new.canary is not None else 0
        self._own(key, self.weight, (*key, "canary")).set(canary)
        self._own(key, self.weight, (*key, "stable")).set(100 - canary)
        self._inconclusive(key, new)
        if new.analysis is not None and (
            old.analysis is None or new.analysis.measured_at != old.analysis.measured_at
        ):
            self._measured(key, new, spec.canary.analysis.checks)

    def _measured(self, key: Key, new: ModelDeploymentStatus, checks: Iterable[Check]) -> None:
        assert new.analysis is not None
        values: dict[tuple[str, ...], float] = {}
        for check in new.analysis.checks:
            self.verdicts.labels(check.kind, check.verdict).inc()
            if check.provider_error:
                self.error("metrics_provider")
            for variant, value in (("canary", check.value), ("stable", check.stable_value)):
                if value is not None:
                    values[(*key, check.name, variant)] = value
        self._only(key, self.check_value, values)
        limits: dict[tuple[str, ...], float] = {
            (*key, spec.name, bound): limit
            for spec in checks
            for bound, limit in absolute_limits(spec)
        }
        self._only(key, self.check_threshold, limits)

    def _inconclusive(self, key: Key, new: ModelDeploymentStatus) -> None:
        since = new.analysis.inconclusive_since if new.analysis is not None else None
        self._only(key, self.inconclusive_since, {key: since.timestamp()} if since else {})

    def _only(self, key: Key, gauge: Gauge, values: dict[tuple[str, ...], float]) -> None:
        """``gauge``'s series of this object are exactly ``values``: a check taken out of the
        spec, or a renamed model, leaves no series behind."""
        for metric, labels in list(self._owned.get(key, ())):
            if metric is gauge and labels not in values:
                self._owned[key].discard((metric, labels))
                gauge.remove(*labels)
        for labels, value in values.items():
            self._own(key, gauge, labels).set(value)

    def _own(self, key: Key, metric: _M, labels: tuple[str, ...]) -> _M:
        self._owned.setdefault(key, set()).add((metric, labels))
        return metric.labels(*labels)


def _step_ended(old: ModelDeploymentStatus, new: ModelDeploymentStatus) -> bool:
    """A step ends when the canary moves to another step, is promoted or is taken away."""
    if old.current_step is None or old.canary is None:
        return False
    same_canary = new.canary is not None and new.canary.revision == old.canary.revision
    return not same_canary or new.current_step != old.current_step


def absolute_limits(check: Check) -> list[tuple[str, float]]:
    """The limits a check holds the canary's value to on its own (not relative to stable),
    as ``("max" | "min", limit)``: what the dashboard draws the values against."""
    settings = getattr(check, check.kind.field)
    limits = [("max", getattr(settings, "max", None)), ("min", getattr(settings, "min", None))]
    limits.append(("max", getattr(settings, "max_seconds", None)))
    return [(bound, float(limit)) for bound, limit in limits if limit is not None]


DEFAULT = OperatorMetrics()
"""The process's metrics, served by ``coalmine operator`` on ``metricsPort``."""

set_leader = DEFAULT.set_leader
"""For the HA code: ``opmetrics.set_leader(True)`` when this process takes the lease."""

__all__ = ["DEFAULT", "ERROR_KINDS", "RESULTS", "OperatorMetrics", "absolute_limits", "set_leader"]
