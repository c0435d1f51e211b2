"""The operator's metrics: what a status transition counts, and which series an object owns."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

import coalmine.handlers as handlers
from coalmine.api.checks import Check, ErrorRateCheck, ErrorRateVsStable, LatencyCheck
from coalmine.api.spec import ModelDeploymentSpec
from coalmine.api.status import (
    AnalysisStatus,
    CheckStatus,
    HistoryEntry,
    ModelDeploymentStatus,
    Phase,
    RevisionRef,
)
from coalmine.handlers import Ticker
from coalmine.health import Health
from coalmine.k8s import ApiError
from coalmine.opmetrics import OperatorMetrics, absolute_limits
from coalmine.reconcile import Deps
from coalmine.settings import OperatorSettings
from tests.coalmine.fakes import FakeKube, FakeProvider

MODEL = {"name": "iris-model", "version": "v2", "uri": "file:///m.onnx", "format": "onnx"}
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
KEY = ("ml", "iris")
V1 = RevisionRef(revision="aaa", version="v1", uri="s3://m/1")
V2 = RevisionRef(revision="bbb", version="v2", uri="s3://m/2")


def _metrics() -> tuple[OperatorMetrics, CollectorRegistry]:
    registry = CollectorRegistry()
    return OperatorMetrics(registry), registry


def _value(registry: CollectorRegistry, metric: str, /, **labels: str) -> float | None:
    return registry.get_sample_value(metric, labels)


def _spec(*checks: Check, model: str = "iris-model") -> ModelDeploymentSpec:
    spec = ModelDeploymentSpec.model_validate({"model": {**MODEL, "name": model}})
    if checks:
        analysis = spec.canary.analysis.model_copy(update={"checks": list(checks)})
        canary = spec.canary.model_copy(update={"analysis": analysis})
        spec = spec.model_copy(update={"canary": canary})
    return spec


def _canary(step: int, weight: int, **more: object) -> ModelDeploymentStatus:
    return ModelDeploymentStatus(
        phase=Phase.PROGRESSING, stable=V1, canary=V2, current_step=step, weight=weight,
        applied_weight=weight, step_started_at=T0, **more,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_rollback_counts_once_and_the_counters_start_at_zero():
    metrics, registry = _metrics()
    rollouts = "coalmine_rollouts_total"
    metrics.seen(KEY)
    assert _value(registry, rollouts, namespace="ml", name="iris", result="rolled_back") == 0
    before = _canary(1, 20)
    entry = HistoryEntry(revision="bbb", version="v2", outcome="RolledBack", reason="x", at=T0)
    after = ModelDeploymentStatus(phase=Phase.DEGRADED, stable=V1, history=[entry])
    metrics.written(KEY, before, after, _spec(), T0)
    metrics.written(KEY, after, after, _spec(), T0)  # the next tick: the same history
    assert _value(registry, rollouts, namespace="ml", name="iris", result="rolled_back") == 1
    assert _value(registry, rollouts, namespace="ml", name="iris", result="promoted") == 0


def test_a_step_that_ends_is_timed_and_the_weight_follows_the_router():
    metrics, registry = _metrics()
    later = T0 + timedelta(minutes=5)
    metrics.written(KEY, _canary(0, 10), _canary(1, 40), _spec(), later)
    assert _value(registry, "coalmine_step_duration_seconds_count") == 1
    assert _value(registry, "coalmine_step_duration_seconds_sum") == 300
    assert _value(registry, "coalmine_weight", namespace="ml", name="iris", variant="canary") == 40
    assert _value(registry, "coalmine_weight", namespace="ml", name="iris", variant="stable") == 60
    metrics.written(KEY, _canary(1, 40), _canary(1, 40), _spec(), later)  # same step: no new sample
    assert _value(registry, "coalmine_step_duration_seconds_count") == 1


def test_a_new_measurement_counts_verdicts_and_sets_values_and_limits():
    metrics, registry = _metrics()
    checks = [
        Check(name="errors", error_rate=ErrorRateCheck(max=0.05, vs_stable=ErrorRateVsStable())),
        Check(name="p99", latency=LatencyCheck(max_seconds=0.5)),
    ]
    measured = AnalysisStatus(
        measured_at=T0, step=0, weight=10, verdict="fail", inconclusive_since=T0,
        checks=[
            CheckStatus(name="errors", kind="errorRate", verdict="fail", value=0.2,
                        stable_value=0.01, provider_error=False),
            CheckStatus(name="p99", kind="latency", verdict="inconclusive", provider_error=True),
        ],
    )  # fmt: skip
    metrics.written(KEY, _canary(0, 10), _canary(0, 10, analysis=measured), _spec(*checks), T0)
    metrics.written(KEY, _canary(0, 10, analysis=measured), _canary(0, 10, analysis=measured),
                    _spec(*checks), T0)  # fmt: skip
    assert _value(registry, "coalmine_verdicts_total", kind="errorRate", verdict="fail") == 1
    assert _value(registry, "coalmine_verdicts_total", kind="latency", verdict="inconclusive") == 1
    assert _value(registry, "coalmine_reconcile_errors_total", kind="metrics_provider") == 1
    value = "coalmine_check_value"
    assert _value(registry, value, namespace="ml", name="iris", check="errors", variant="canary")
    assert _value(registry, value, namespace="ml", name="iris", check="errors", variant="stable")
    limit = "coalmine_check_threshold"
    assert _value(registry, limit, namespace="ml", name="iris", check="p99", bound="max") == 0.5
    assert _value(registry, limit, namespace="ml", name="iris", check="errors", bound="max") == 0.05
    since = "coalmine_analysis_inconclusive_since_timestamp_seconds"
    assert _value(registry, since, namespace="ml", name="iris") == T0.timestamp()
    metrics.written(KEY, _canary(0, 10, analysis=measured), _canary(0, 10), _spec(*checks), T0)
    assert _value(registry, since, namespace="ml", name="iris") is None


def test_a_check_taken_out_or_a_renamed_model_leaves_no_series_behind():
    metrics, registry = _metrics()
    p99 = Check(name="p99", latency=LatencyCheck(max_seconds=0.5))
    measured = AnalysisStatus(
        measured_at=T0, step=0, weight=10, verdict="pass",
        checks=[CheckStatus(name="p99", kind="latency", verdict="pass", value=0.1)],
    )  # fmt: skip
    metrics.written(KEY, _canary(0, 10), _canary(0, 10, analysis=measured), _spec(p99), T0)
    info = "coalmine_modeldeployment_info"
    assert _value(registry, info, namespace="ml", name="iris", model="iris-model") == 1
    again = measured.model_copy(update={"measured_at": T0 + timedelta(seconds=5), "checks": []})
    metrics.written(
        KEY, _canary(0, 10, analysis=measured), _canary(0, 10, analysis=again),
        _spec(model="renamed"), T0,
    )  # fmt: skip
    assert _value(registry, info, namespace="ml", name="iris", model="iris-model") is None
    assert _value(registry, info, namespace="ml", name="iris", model="renamed") == 1
    value = "coalmine_check_value"
    assert (
        _value(registry, value, namespace="ml", name="iris", check="p99", variant="canary") is None
    )


def test_a_deleted_object_takes_its_series_with_it():
    metrics, registry = _metrics()
    metrics.written(KEY, _canary(0, 10), _canary(0, 10), _spec(), T0)
    metrics.seen(("ml", "other"))
    assert _value(registry, "coalmine_modeldeployments") == 2
    metrics.forget(KEY)
    assert (
        _value(registry, "coalmine_weight", namespace="ml", name="iris", variant="canary") is None
    )
    assert _value(registry, "coalmine_rollouts_total", namespace="ml", name="iris",
                  result="promoted") is None  # fmt: skip
    assert _value(registry, "coalmine_modeldeployments") == 1


def test_only_absolute_limits_are_thresholds():
    vs_stable_only = Check(name="e", error_rate=ErrorRateCheck(vs_stable=ErrorRateVsStable()))
    assert absolute_limits(vs_stable_only) == []


def test_leader_and_build_info():
    metrics, registry = _metrics()
    assert _value(registry, "coalmine_leader") == 1
    metrics.set_leader(False)
    assert _value(registry, "coalmine_leader") == 0
    sample = next(iter(registry.collect()))
    assert sample.name == "coalmine_build_info" and sample.samples[0].value == 1


def _ticker(
    monkeypatch: pytest.MonkeyPatch, outcome: Exception | None
) -> tuple[Ticker, CollectorRegistry]:
    def fake_reconcile(_deps: Deps, namespace: str, name: str) -> float:
        if outcome is not None:
            raise outcome
        return 60.0

    monkeypatch.setattr(handlers, "reconcile", fake_reconcile)
    metrics, registry = _metrics()
    deps = Deps(
        kube=FakeKube(), providers=lambda a, t: FakeProvider(),
        settings=OperatorSettings(tick_seconds=60), metrics=metrics,
    )  # fmt: skip
    return Ticker(deps, Health(stall_after=60, watch_grace=60)), registry


@pytest.mark.parametrize(
    ("outcome", "kind"),
    [(None, None), (ApiError(500, "boom"), "api"), (KeyError("x"), "unexpected")],
)
def test_every_tick_is_counted_timed_and_its_error_kind_named(
    monkeypatch: pytest.MonkeyPatch, outcome: Exception | None, kind: str | None
):
    ticker, registry = _ticker(monkeypatch, outcome)
    if isinstance(outcome, KeyError):
        with pytest.raises(KeyError):  # kopf logs it and retries
            asyncio.run(ticker.tick("ml", "iris"))
    else:
        asyncio.run(ticker.tick("ml", "iris"))
    assert _value(registry, "coalmine_ticks_total") == 1
    assert _value(registry, "coalmine_tick_duration_seconds_count") == 1
    assert ticker.schedule.get(("ml", "iris")) is not None, "a failed tick is ticked again"
    for error_kind in ("api", "unexpected"):
        counted = _value(registry, "coalmine_reconcile_errors_total", kind=error_kind)
        assert counted == (1 if error_kind == kind else 0)


def test_a_scheduled_tick_long_after_it_was_due_records_its_lag(monkeypatch: pytest.MonkeyPatch):
    ticker, registry = _ticker(monkeypatch, None)
    asyncio.run(ticker.scheduled(("ml", "iris"), handlers.time.monotonic() - 7.0))
    lag = _value(registry, "coalmine_tick_lag_seconds_sum")
    assert lag is not None and 7.0 <= lag < 9.0


def _samples(registry: CollectorRegistry) -> int:
    return sum(len(family.samples) for family in registry.collect())


def test_series_grow_by_a_bounded_amount_per_object_and_go_with_it():
    """The cardinality bound docs/operator.md states: per object a fixed handful (no revision,
    version or reason labels, so re-rolling one object many times adds nothing), and back to
    the fixed set once the objects are deleted."""
    metrics, registry = _metrics()
    baseline = _samples(registry)
    checks = [Check(name="errors", error_rate=ErrorRateCheck(max=0.05)),
              Check(name="p99", latency=LatencyCheck(max_seconds=0.5))]  # fmt: skip
    measured = AnalysisStatus(
        measured_at=T0, step=0, weight=10, verdict="pass",
        checks=[CheckStatus(name=c.name, kind=c.kind, verdict="pass", value=0.01) for c in checks],
    )  # fmt: skip
    keys = [("ml", f"model-{i}") for i in range(50)]
    for rollout in range(3):  # three rollouts each: new revisions, same series
        for key in keys:
            entry = HistoryEntry(
                revision=f"r{rollout}", version=f"v{rollout}", outcome="Promoted", reason="x", at=T0
            )
            after = _canary(0, 10, analysis=measured.model_copy(update={"step": rollout}))
            after = after.model_copy(update={"history": [entry]})
            metrics.written(key, _canary(0, 10), after, _spec(*checks), T0)
    verdict_series = 2 * 2  # (errorRate, latency) x pass, each with its _created sample
    per_object = (_samples(registry) - baseline - verdict_series) / len(keys)
    # 5 rollout results (x2: _created), 2 weights, 1 info, 2 check values, 2 limits.
    assert per_object == 5 * 2 + 2 + 1 + 2 + 2
    for key in keys:
        metrics.forget(key)
    assert _samples(registry) == baseline + verdict_series
