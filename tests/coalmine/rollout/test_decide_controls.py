"""Manual controls, and the rollback sequence under crashes and a stuck router."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from coalmine.rollout import Action, Controls, decide

from .scenarios import (
    FAIL,
    NAN,
    PASS,
    applied_weights,
    canary_on,
    canary_spec,
    event_reasons,
    finished,
    script,
)
from .sim import Sim


def press(sim: Sim, **controls: bool) -> None:
    sim.controls = replace(sim.controls, **controls)


def at_step(sim: Sim, step: int) -> None:
    sim.run_until(lambda s: s.status.current_step == step and s.status.step_started_at is not None)


def test_pause_holds_the_weight_and_resume_restarts_the_step_pause() -> None:
    sim = canary_on()
    at_step(sim, 1)
    sim.spec = sim.spec.model_copy(update={"paused": True})
    sim.run(30)  # 15 minutes of ticks at most: nothing moves
    assert sim.status.phase == "Paused" and sim.status.paused_by == "user"
    assert sim.status.current_step == 1 and sim.status.weight == 30
    assert event_reasons(sim).count("Paused") == 1  # one Event, not one per tick
    sim.spec = sim.spec.model_copy(update={"paused": False})
    resumed = sim.tick()
    assert resumed.status.phase == "Progressing" and resumed.status.step_started_at is None
    sim.run_until(finished)
    assert sim.status.history[-1].outcome == "Promoted"


def test_pause_stops_automatic_rollback_but_abort_still_works() -> None:
    sim = canary_on(measure=script(PASS, PASS, FAIL))
    sim.run_until(lambda s: s.status.weight == 10)
    sim.spec = sim.spec.model_copy(update={"paused": True})
    sim.run(10)
    assert sim.status.phase == "Paused"
    press(sim, abort=True)
    sim.run_until(finished)
    assert sim.status.history[-1].outcome == "Aborted" and sim.status.phase == "Degraded"


def test_promote_skips_the_remaining_steps() -> None:
    sim = canary_on()
    at_step(sim, 0)
    press(sim, promote=True)
    decision = sim.tick()
    assert decision.action == Action.PROMOTE and decision.consumed_controls.promote
    sim.run_until(finished)
    assert applied_weights(sim) == [0, 10, 0]
    assert sim.status.stable.version == "v2"  # type: ignore[union-attr]


def test_promote_is_refused_while_a_check_fails() -> None:
    sim = canary_on(measure=script(FAIL), policy={"failureLimit": 5})
    at_step(sim, 0)
    sim.run_until(lambda s: s.status.analysis is not None and s.status.analysis.verdict == "fail")
    press(sim, promote=True)
    decision = sim.tick()
    assert decision.action != Action.PROMOTE
    assert "PromoteRefused" in [e.reason for e in decision.events]
    assert decision.consumed_controls.promote


def test_promote_full_skips_analysis_even_while_the_canary_starts() -> None:
    sim = canary_on(measure=script(NAN))
    sim.tick()  # canary created
    press(sim, promote_full=True)
    assert sim.tick().action == Action.PROMOTE
    sim.run_until(finished)
    assert sim.status.history[-1].outcome == "Promoted"


def test_abort_rolls_back_and_retry_starts_again() -> None:
    sim = canary_on()
    at_step(sim, 1)
    press(sim, abort=True)
    sim.run_until(finished)
    assert sim.status.phase == "Degraded" and sim.status.history[-1].outcome == "Aborted"
    sim.run(5)
    assert sim.status.canary is None  # aborted revision not restarted by itself
    press(sim, retry=True)
    sim.run_until(finished)
    assert sim.status.history[-1].outcome == "Promoted"


def test_retry_resumes_a_canary_paused_by_inconclusive_analysis() -> None:
    values = [NAN] * 40 + [PASS]
    sim = canary_on(measure=script(*values))
    sim.run_until(lambda s: s.status.phase == "Paused")
    press(sim, retry=True)
    assert sim.tick().status.phase == "Progressing"
    sim.run_until(finished)
    assert sim.status.history[-1].outcome == "Promoted"


def test_abort_during_promotion_is_ignored_with_an_event() -> None:
    sim = canary_on()
    sim.run_until(lambda s: s.decisions[-1].action == Action.PROMOTE)
    press(sim, abort=True)
    decision = sim.tick()
    assert "AbortIgnored" in [e.reason for e in decision.events]
    sim.run_until(finished)
    assert sim.status.history[-1].outcome == "Promoted"


def test_rollback_waits_for_the_router_and_never_scales_down_before() -> None:
    sim = canary_on(measure=script(FAIL))
    sim.run_until(lambda s: s.status.analysis is not None)  # first failure: one to go
    sim.router_stuck = True  # the router keeps the canary at 10% whatever it is told
    sim.run(40)
    assert sim.status.phase == "RollingBack" and sim.status.rollback.stage == "TrafficToStable"  # type: ignore[union-attr]
    assert sim.canary is not None and sim.canary.replicas > 0
    assert all(d.canary_weight == 0 and d.canary is not None for d in sim.decisions[-40:])
    sim.router_stuck = False
    sim.run_until(finished)
    assert sim.status.rollback.stage == "Done"  # type: ignore[union-attr]


def test_rollback_stages_in_order_with_the_scale_down_delay() -> None:
    sim = canary_on(measure=script(FAIL), rollback={"scaleDownDelay": "30s"})
    sim.run_until(finished)
    rolling = [d for d in sim.decisions if d.status.rollback is not None]
    stages = [d.status.rollback.stage for d in rolling]  # type: ignore[union-attr]
    assert stages[0] == "TrafficToStable" and stages[-1] == "Done"
    assert stages == sorted(stages, key=["TrafficToStable", "ScaleDownCanary", "Done"].index)
    record = sim.status.rollback
    assert record is not None and record.traffic_on_stable_at is not None
    first_scale_down = next(d for d in rolling if d.canary is None)
    assert first_scale_down.status.rollback.traffic_on_stable_at is not None  # type: ignore[union-attr]
    scaled_at = sim.now  # the delay is measured from when stable was seen serving everything
    assert scaled_at - record.traffic_on_stable_at >= sim.spec.rollback.scale_down_delay


@pytest.mark.parametrize("crash_after", range(1, 8))
def test_a_crash_anywhere_in_a_rollback_completes_and_never_raises_the_weight(
    crash_after: int,
) -> None:
    """The operator dies after acting but before writing status, ``crash_after`` ticks into the
    rollback: the next operator starts from the last written status and the real cluster."""
    sim = canary_on(measure=script(FAIL))
    sim.run_until(lambda s: s.status.phase == "RollingBack")
    written = copy.deepcopy(sim.status)
    for _ in range(crash_after):
        sim.tick()
        if finished(sim):
            break
    sim.status = written  # lost status writes
    before = len(sim.decisions)
    sim.run_until(finished)
    assert all(d.canary_weight == 0 for d in sim.decisions[before:])
    assert sim.status.phase == "Degraded" and sim.status.history[-1].outcome == "RolledBack"
    assert sum(h.outcome == "RolledBack" for h in sim.status.history) == 1


def test_decide_is_pure_same_inputs_same_decision() -> None:
    sim = canary_on()
    at_step(sim, 1)
    obs = sim.observe()
    assert decide(sim.spec, sim.status, obs, sim.now) == decide(sim.spec, sim.status, obs, sim.now)


def test_controls_not_applicable_are_consumed_not_kept_forever() -> None:
    sim = Sim(canary_on().spec)
    sim.controls = Controls(promote=True, abort=True)
    decision = sim.tick()
    assert decision.consumed_controls == Controls(promote=True, abort=True)


def test_retry_gives_a_failed_first_revision_a_fresh_deadline() -> None:
    sim = Sim(canary_spec())
    revision = sim.spec.revision()
    sim.broken.add(revision)
    sim.run_until(lambda s: s.status.phase == "Failed")
    sim.run(5)
    assert sim.status.phase == "Failed"  # nothing restarts it by itself
    press(sim, retry=True)
    retried = sim.tick()
    assert retried.status.phase == "Pending" and retried.status.step_started_at is not None
    assert retried.stable is not None and retried.stable.revision.revision == revision
    assert "Retrying" in [e.reason for e in retried.events]
    sim.run_until(lambda s: s.status.phase == "Failed")  # still broken: fails again, once more
    assert [h.outcome for h in sim.status.history] == ["Failed", "Failed"]
    sim.broken.discard(revision)  # e.g. the model store is back
    press(sim, retry=True)
    sim.run_until(lambda s: s.status.phase == "Healthy")
    assert sim.status.stable is not None and sim.status.stable.revision == revision
