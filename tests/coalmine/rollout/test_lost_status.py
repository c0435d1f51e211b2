"""A status lost mid-rollout (patched empty, restored from an old backup) promotes nothing:
the stable revision is read back from the stable Deployment's record and the spec's revision
starts again as a canary, judged step by step."""

from __future__ import annotations

from dataclasses import replace

from coalmine.api import ModelDeploymentStatus
from coalmine.rollout import Action

from .scenarios import canary_on, finished


def _mid_canary():  # type: ignore[no-untyped-def]
    sim = canary_on()
    sim.run_until(lambda s: s.status.phase == "Progressing" and (s.status.current_step or 0) >= 1)
    return sim


def test_lost_status_mid_canary_rebuilds_stable_and_restarts_the_canary_at_step_zero() -> None:
    sim = _mid_canary()
    v1 = sim.status.stable
    assert v1 is not None and v1.version == "v1"
    sim.status = ModelDeploymentStatus()  # someone patched status empty
    lost_at = len(sim.decisions)
    first = sim.tick()
    assert first.status.stable == v1  # read back from the Deployment, not the spec's v2
    assert first.stable is not None and first.stable.revision == v1
    assert first.status.canary is not None and first.status.canary.version == "v2"
    assert first.status.current_step == 0 and first.status.phase == "Progressing"
    assert first.events[0].reason == "StatusRebuilt"
    sim.run_until(finished)
    after = sim.decisions[lost_at:]
    promoted_at = next(i for i, d in enumerate(after) if d.action == Action.PROMOTE)
    # Until the canary is promoted by its checks, stable stays v1 in every decision.
    assert all(
        d.stable is not None and d.stable.revision.version == "v1" for d in after[:promoted_at]
    )
    assert sim.status.stable is not None and sim.status.stable.version == "v2"


def test_lost_status_without_a_record_holds_all_traffic_on_stable_and_warns_once() -> None:
    sim = _mid_canary()
    assert sim.stable is not None and sim.canary is not None
    sim.stable = replace(sim.stable, ref=None)  # written by an operator before the record
    sim.status = ModelDeploymentStatus()
    decisions = sim.run(5)
    assert all(d.canary_weight == 0 and d.canary is None for d in decisions)
    assert all(d.stable is None for d in decisions)  # stable's template is never touched
    assert sim.stable is not None and sim.stable.revision != sim.spec.revision()
    reasons = [e.reason for d in decisions for e in d.events]
    assert reasons.count("StatusLost") == 1, reasons
    assert all(d.status.stable is None for d in decisions)


def test_lost_status_with_stable_already_on_the_spec_revision_just_serves_it() -> None:
    sim = canary_on()
    sim.run_until(finished)
    sim.status = ModelDeploymentStatus()
    decision = sim.tick()
    assert decision.status.stable is not None and decision.status.stable.version == "v2"
    assert decision.canary is None
    assert "StatusRebuilt" not in [e.reason for e in decision.events]
