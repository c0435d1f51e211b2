"""Table-driven rollout paths through ``decide``, run tick by tick by the simulator."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from coalmine.api import ModelDeploymentStatus
from coalmine.rollout import Action, Measurement, SideMeasurement

from .scenarios import (
    FAIL,
    NAN,
    PASS,
    STEPS,
    applied_weights,
    canary_on,
    canary_spec,
    event_reasons,
    finished,
    script,
)
from .sim import VALUE_CHECK, Sim, spec_for, with_version


def test_first_deploy_goes_pending_then_healthy_without_a_canary() -> None:
    sim = Sim(canary_spec())
    first = sim.tick()
    assert first.status.phase == "Pending" and first.canary is None
    assert first.stable is not None and first.stable.revision.version == "v1"
    sim.run_until(lambda s: s.status.phase == "Healthy")
    ready = {c.type: c for c in sim.status.conditions}["Ready"]
    assert ready.status == "True" and ready.reason == "StableServing"


def test_first_deploy_that_never_gets_ready_fails_at_the_deadline_then_a_fix_deploys() -> None:
    sim = Sim(canary_spec())
    sim.broken.add(sim.spec.revision())
    sim.run_until(lambda s: s.status.phase == "Failed")
    assert sim.now - sim.decisions[0].status.step_started_at >= timedelta(minutes=10)  # type: ignore[operator]
    assert sim.status.history[-1].outcome == "Failed"
    sim.spec = with_version(sim.spec, "v1-fixed")  # nothing serves: replaced at once, no canary
    sim.run_until(lambda s: s.status.phase == "Healthy")
    assert sim.status.stable is not None and sim.status.stable.version == "v1-fixed"
    assert all(d.canary is None for d in sim.decisions)


@pytest.mark.parametrize(("interval", "wait"), [("1s", 1.0), ("30s", 5.0)])
def test_after_setting_a_weight_the_next_tick_comes_within_the_interval(
    interval: str, wait: float
) -> None:
    """The step (and its first look) starts once the router is seen at the weight: at a short
    interval the canary's first answers must not wait the 5 s a pod start is given (B8)."""
    spec = spec_for("v1", canary={"steps": list(STEPS), "analysis": {
        "checks": list(VALUE_CHECK), "interval": interval,
    }})  # fmt: skip
    sim = Sim(spec)
    sim.healthy_on("v1")
    sim.spec = with_version(sim.spec, "v2")
    sim.run_until(lambda s: s.decisions[-1].action == Action.SET_WEIGHT)
    assert sim.decisions[-1].requeue_after == wait
    started = sim.run_until(lambda s: s.decisions[-1].reason == "StepStarted")
    assert started.status.step_started_at is not None


def test_happy_promotion_through_all_steps() -> None:
    sim = canary_on()
    sim.run_until(finished)
    assert applied_weights(sim) == [0, 10, 30, 60, 0]
    assert sim.status.stable is not None and sim.status.stable.version == "v2"
    assert sim.status.phase == "Healthy" and sim.status.history[-1].outcome == "Promoted"
    assert event_reasons(sim) == [
        "CanaryCreated",
        "WeightNotExpressible",  # 4 replicas: 1 canary pod beside 4 is 20%, not 10%
        "StepAdvanced",
        "WeightNotExpressible",  # 2 beside 4 is 33%, not 30%
        "StepAdvanced",
        "Promoting",
        "Promoted",
    ]
    promote = next(i for i, d in enumerate(sim.decisions) if d.action == Action.PROMOTE)
    drain = next(i for i, d in enumerate(sim.decisions) if i > promote and d.canary_weight == 0)
    # The canary keeps serving until stable is seen ready on the new revision...
    assert sim.observed[drain].stable.ready_on(sim.status.stable.revision)  # type: ignore[union-attr]
    # ...and is scaled down only after the router was seen at 0.
    gone = next(i for i, d in enumerate(sim.decisions) if i > promote and d.canary is None)
    assert sim.observed[gone].canary_weight == 0 and gone > drain


def test_status_shows_the_weight_the_router_applies_and_warns_once_per_step() -> None:
    sim = canary_on()
    sim.run_until(finished)
    warnings = [e for d in sim.decisions for e in d.events if e.reason == "WeightNotExpressible"]
    assert [(e.type, e.message) for e in warnings] == [
        ("Warning", "step 1 asks 10% but 4 replicas give the canary 20% through the replicas "
         "router; use more replicas or the gatewayAPI router"),
        ("Warning", "step 2 asks 30% but 4 replicas give the canary 33% through the replicas "
         "router; use more replicas or the gatewayAPI router"),
    ]  # fmt: skip
    started = [d.status for d in sim.decisions if d.reason == "StepStarted"]
    assert [(s.weight, s.applied_weight) for s in started] == [(10, 20), (30, 33), (60, 60)]
    assert sim.status.applied_weight is None  # no canary once promoted


def test_an_exact_router_gets_no_weight_warning() -> None:
    gateway = {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}}
    sim = canary_on(traffic=gateway, runtime={"replicas": 10})
    sim.run_until(finished)
    assert "WeightNotExpressible" not in event_reasons(sim)


def test_each_step_waits_its_whole_pause_after_the_router_applied_the_weight() -> None:
    sim = canary_on()
    sim.run_until(finished)
    for d in sim.decisions:
        if d.action == Action.ADVANCE_STEP:
            started = sim.decisions[sim.decisions.index(d) - 1].status.step_started_at
            assert started is not None and d.status.analysis is not None
            assert d.status.analysis.measured_at - started >= timedelta(minutes=1)


FAILING_CHECKS: list[tuple[str, dict[str, Any], Measurement]] = [
    (
        "error-rate",
        {"errorRate": {"max": 0.05}},
        Measurement("c", SideMeasurement(samples=1000, errors=300)),
    ),
    (
        "error-vs-stable",
        {"errorRate": {"vsStable": {}}},
        Measurement(
            "c",
            SideMeasurement(samples=2000, errors=100),
            SideMeasurement(samples=20000, errors=200),
        ),
    ),
    (
        "latency",
        {"latency": {"maxSeconds": 0.2}},
        Measurement("c", SideMeasurement(value=0.9, samples=500)),
    ),
    (
        "latency-ratio",
        {"latency": {"vsStable": {"maxRatio": 1.5}}},
        Measurement(
            "c",
            SideMeasurement(value=0.9, samples=500, latency_buckets=((0.5, 0.0), (1.0, 500.0))),
            SideMeasurement(
                value=0.1, samples=5000, latency_buckets=((0.1, 4950.0), (1.0, 5000.0))
            ),
        ),
    ),
    (
        "accuracy",
        {"quality": {"min": 0.9}},
        Measurement("c", SideMeasurement(samples=1000, correct=700)),
    ),
    (
        "mae",
        {"quality": {"metric": "meanAbsoluteError", "max": 1.0}},
        Measurement("c", SideMeasurement(samples=1000, value=4.0)),
    ),
    (
        "drift",
        {"drift": {"max": 0.2}},
        Measurement(
            "c",
            SideMeasurement(distribution=(("a", 900.0), ("b", 100.0))),
            SideMeasurement(distribution=(("a", 500.0), ("b", 500.0))),
        ),
    ),
    ("promql", {"promql": {"query": "q", "max": 1}}, Measurement("c", SideMeasurement(value=5.0))),
]


@pytest.mark.parametrize(
    ("kind", "check", "measurement"), FAILING_CHECKS, ids=[c[0] for c in FAILING_CHECKS]
)
def test_each_kind_of_failure_rolls_back_with_the_numbers(
    kind: str, check: dict[str, Any], measurement: Measurement
) -> None:
    sim = canary_on(measure=lambda s: (measurement,), checks=[{"name": "c", **check}])
    sim.run_until(finished)
    assert sim.status.phase == "Degraded" and sim.status.history[-1].outcome == "RolledBack"
    record = sim.status.rollback
    assert record is not None and record.check == "c" and record.threshold
    assert record.value is not None and record.stage == "Done"
    done = [e for d in sim.decisions for e in d.events if e.reason == "RolledBack"]
    assert len(done) == 1 and done[0].type == "Warning"
    assert "check c" in done[0].message and record.threshold in done[0].message
    assert max(d.canary_weight for d in sim.decisions) == 10  # failed at the first step


def test_no_canary_traffic_holds_then_pauses_per_policy() -> None:
    empty = Measurement("custom", SideMeasurement(value=NAN, samples=0))
    sim = canary_on(measure=lambda s: (empty,))
    sim.run_until(lambda s: s.status.phase == "Paused")
    assert sim.status.paused_by == "analysis" and sim.status.weight == 10
    assert applied_weights(sim) == [0, 10]  # held at step 0 the whole time
    inconclusive_since = sim.status.analysis.inconclusive_since  # type: ignore[union-attr]
    assert inconclusive_since is not None and sim.now - inconclusive_since >= timedelta(minutes=10)
    sim.run(20)  # a person must act: it stays paused, at its weight
    assert sim.status.phase == "Paused" and sim.status.weight == 10
    assert "InconclusiveAnalysis" in event_reasons(sim)


def test_no_canary_traffic_rolls_back_when_the_policy_says_so() -> None:
    empty = Measurement("custom", SideMeasurement(value=NAN, samples=0))
    sim = canary_on(
        measure=lambda s: (empty,), policy={"onInconclusive": "rollback", "inconclusiveLimit": "3m"}
    )
    sim.run_until(finished)
    assert sim.status.phase == "Degraded"
    assert sim.status.rollback is not None and "InconclusiveLimit" in sim.status.rollback.reason


def test_flapping_error_error_ok_error_does_not_roll_back_under_a_limit_of_3() -> None:
    sim = canary_on(measure=script(FAIL, FAIL, PASS, FAIL, PASS), policy={"failureLimit": 3})
    sim.run_until(finished)
    assert sim.status.history[-1].outcome == "Promoted"


def test_two_consecutive_failures_roll_back_under_the_default_limit() -> None:
    sim = canary_on(measure=script(PASS, FAIL, FAIL))
    sim.run_until(finished)
    assert sim.status.history[-1].outcome == "RolledBack"


def test_nan_never_advances_a_step() -> None:
    sim = canary_on(measure=script(NAN))
    sim.run_until(lambda s: s.status.phase == "Paused")
    assert all(d.action != Action.ADVANCE_STEP for d in sim.decisions)
    checks = sim.status.analysis.checks  # type: ignore[union-attr]
    assert checks[0].verdict == "inconclusive" and checks[0].recent[-1] == "inconclusive"


def test_restart_mid_pause_decides_exactly_as_an_uninterrupted_run() -> None:
    straight = canary_on()
    straight.run_until(finished)
    restarted = canary_on()
    restarted.run_until(
        lambda s: s.status.current_step == 1 and s.status.step_started_at is not None
    )
    # A new operator process: the status comes back from the API server as JSON.
    wire = restarted.status.model_dump(mode="json", by_alias=True, exclude_none=True)
    restarted.status = ModelDeploymentStatus.model_validate(wire)
    restarted.run_until(finished)
    assert [d.action for d in restarted.decisions] == [d.action for d in straight.decisions]
    assert restarted.status == straight.status


def test_new_revision_mid_rollout_returns_traffic_then_restarts_at_step_0() -> None:
    sim = canary_on()
    sim.run_until(lambda s: s.status.current_step == 1 and s.status.weight == 30)
    sim.spec = with_version(sim.spec, "v3")
    drain = sim.tick()
    assert drain.canary_weight == 0 and drain.canary is not None
    assert drain.canary.revision.version == "v2"  # not switched before the router is seen at 0
    switch = sim.tick()
    assert switch.action == Action.CREATE_CANARY and switch.canary.revision.version == "v3"  # type: ignore[union-attr]
    assert switch.status.current_step == 0 and switch.status.analysis is None
    assert sim.status.history[-1].outcome == "Superseded" and sim.status.history[-1].version == "v2"
    sim.run_until(finished)
    assert sim.status.stable.version == "v3"  # type: ignore[union-attr]
    assert applied_weights(sim) == [0, 10, 30, 0, 10, 30, 60, 0]


def test_reapplying_stable_mid_canary_rolls_back_fast_and_ends_healthy() -> None:
    sim = canary_on(measure=script(NAN))  # analysis is inconclusive: no verdict needed
    sim.run_until(lambda s: s.status.weight == 10)
    sim.spec = with_version(sim.spec, "v1")
    sim.run_until(finished)
    assert sim.status.phase == "Healthy" and sim.status.history[-1].outcome == "Superseded"
    assert sim.status.stable.version == "v1"  # type: ignore[union-attr]


def test_a_rolled_back_revision_is_not_retried_until_asked() -> None:
    sim = canary_on(measure=script(FAIL))
    sim.run_until(finished)
    sim.measure = script(PASS)
    sim.run(10)
    assert sim.status.phase == "Degraded" and sim.status.canary is None
    sim.controls = replace(sim.controls, retry=True)
    retry = sim.tick()
    assert retry.action == Action.CREATE_CANARY and retry.consumed_controls.retry
    sim.run_until(finished)
    assert sim.status.history[-1].outcome == "Promoted"


def test_a_failed_revision_runs_again_after_the_spec_moved_on() -> None:
    sim = canary_on(measure=script(FAIL))
    sim.run_until(finished)
    sim.measure = script(PASS)
    sim.spec = with_version(sim.spec, "v3")
    sim.run_until(finished)
    sim.spec = with_version(sim.spec, "v2")  # back to the one that failed: a new request
    assert sim.tick().action == Action.CREATE_CANARY


def test_canary_that_never_gets_ready_fails_its_progress_deadline() -> None:
    sim = canary_on()
    sim.broken.add(sim.spec.revision())
    sim.run_until(finished)
    assert Action.FAIL_DEADLINE in [d.action for d in sim.decisions]
    assert all(d.canary_weight == 0 for d in sim.decisions)
    assert sim.status.history[-1].outcome == "RolledBack"
    assert "ProgressDeadlineExceeded" in sim.status.history[-1].reason


def test_tiny_canary_with_a_few_errors_stays_but_a_real_regression_rolls_back() -> None:
    check = [{"name": "errors", "errorRate": {"max": 0.05, "vsStable": {}}}]

    def traffic(canary_errors: int) -> Any:
        return lambda s: (
            Measurement(
                "errors",
                SideMeasurement(samples=60, errors=canary_errors),
                SideMeasurement(samples=6000, errors=60),
            ),
        )

    noisy = canary_on(measure=traffic(2), checks=check, policy={"minSamples": 50})  # 3.3% vs 1%
    noisy.run_until(finished)
    assert noisy.status.history[-1].outcome == "Promoted"
    broken = canary_on(measure=traffic(12), checks=check, policy={"minSamples": 50})  # 20%
    broken.run_until(finished)
    assert broken.status.history[-1].outcome == "RolledBack"


def test_canary_that_cannot_scale_up_for_the_next_step_fails_its_deadline() -> None:
    sim = canary_on()
    sim.run_until(lambda s: s.status.step_started_at is not None)  # serving at step 0
    sim.broken.add(sim.spec.revision())  # more pods of it never become ready
    sim.run_until(finished)
    assert sim.status.history[-1].outcome == "RolledBack"
    assert "ProgressDeadlineExceeded" in sim.status.history[-1].reason
    assert max(d.canary_weight for d in sim.decisions) == 10  # never raised onto unready pods


def test_a_stalled_promotion_is_reported_once_and_the_canary_keeps_serving() -> None:
    sim = canary_on()
    sim.run_until(lambda s: s.decisions[-1].action == Action.PROMOTE)
    sim.broken.add(sim.spec.revision())  # the stable Deployment's new pods never get ready
    sim.run(200)  # 5-second ticks: well past the 10-minute progress deadline
    assert event_reasons(sim).count("PromotionStalled") == 1
    assert sim.status.phase == "Progressing" and sim.decisions[-1].canary_weight == 60
    assert {c.type: c.reason for c in sim.status.conditions}["Progressing"] == "PromotionStalled"


SETTLED_ENDINGS = {
    "first revision ready": (lambda: Sim(canary_spec()), "Healthy", "Ready", 0),
    "canary promoted": (lambda: canary_on(measure=script(0.0)), "Healthy", "Promoted", 0),
    # The tick after a rollback's last adds how to retry (reason RevisionFailedBefore).
    "canary rolled back": (
        lambda: canary_on(measure=script(5.0)),
        "Degraded",
        "RevisionFailedBefore",
        1,
    ),
}


@pytest.mark.parametrize("ending", SETTLED_ENDINGS, ids=list(SETTLED_ENDINGS))
def test_a_settled_objects_later_ticks_change_nothing_in_its_status(ending: str) -> None:
    """A Healthy or Degraded object ticks every 300 s: none of those ticks may change its
    status (a write and a log line for nothing, B9), and Progressing keeps saying how the
    last rollout ended."""
    make, phase, reason, settling = SETTLED_ENDINGS[ending]
    sim = make()
    sim.run_until(lambda s: s.status.phase == phase and s.status.canary is None)
    sim.run(settling)
    settled = sim.status
    later = sim.run(3)
    assert all(d.status == settled for d in later), [d.reason for d in later]
    progressing = {c.type: c for c in settled.conditions}["Progressing"]
    assert (progressing.status, progressing.reason) == ("False", reason)
