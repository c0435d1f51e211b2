"""A canary whose model fetch fails: a failure no retry can cure rolls it back at once, with
the fetch's reason; a transient one shows as a condition while the canary waits for its
progress deadline. Driven tick by tick by the simulator."""

from __future__ import annotations

from datetime import timedelta

import pytest

from coalmine.rollout import Action
from coalmine.rollout.types import FetchFailure

from .scenarios import canary_on
from .sim import Sim

DENIED = FetchFailure("ArtifactAccessDenied", "s3://models/iris/v2/model.onnx: AccessDenied (403)")
UNREACHABLE = FetchFailure(
    "ArtifactUnreachable", "https://models.example/m.onnx: connection refused"
)


def _failing_canary(failure: FetchFailure) -> Sim:
    sim = canary_on()
    revision = sim.spec.revision()
    sim.broken.add(revision)
    sim.fetch_failures[revision] = failure
    return sim


def _condition(sim: Sim, kind: str) -> tuple[str, str, str]:
    found = {c.type: c for c in sim.status.conditions}[kind]
    return found.status, found.reason, found.message


@pytest.mark.parametrize(
    "reason",
    ["ArtifactAccessDenied", "ArtifactNotFound", "ArtifactChecksumMismatch", "ArtifactTooLarge"],
)
def test_a_definitive_fetch_failure_rolls_the_canary_back_at_once(reason: str) -> None:
    sim = _failing_canary(FetchFailure(reason, "s3://models/iris/v2/model.onnx: no"))
    sim.run_until(lambda s: s.status.phase == "Degraded")
    # The tick that creates the canary, then the first that sees its pods fail: rolled back
    # (its progress deadline is 10 minutes away).
    assert [d.action for d in sim.decisions[:2]] == [Action.CREATE_CANARY, Action.ROLL_BACK]
    assert all(d.canary_weight == 0 for d in sim.decisions)  # never any traffic
    rollback = sim.decisions[1]
    assert rollback.events[0].reason == "RollingBack"
    assert "model fetch failed: s3://models/iris/v2/model.onnx: no" in rollback.events[0].message
    record = sim.status.rollback
    why = f"{reason}: model fetch failed: s3://models/iris/v2/model.onnx: no"
    assert record is not None and record.reason == why
    closing = [e for d in sim.decisions for e in d.events if e.reason == "RolledBack"]
    assert [e.message for e in closing] == [f"v2 rolled back: {why}"]
    assert sim.status.history[-1].outcome == "RolledBack"
    assert _condition(sim, "RolledBack")[:2] == ("True", reason)
    status, shown, message = _condition(sim, "ArtifactReady")
    assert (status, shown) == ("False", reason)  # still said after the canary is gone
    assert "s3://models/iris/v2/model.onnx" in message


def test_a_transient_fetch_failure_shows_and_waits_for_the_deadline() -> None:
    sim = _failing_canary(UNREACHABLE)
    sim.run(3)
    assert sim.status.phase == "Progressing"
    assert sim.decisions[-1].reason == "WaitingForCanaryReady"
    assert _condition(sim, "ArtifactReady") == (
        "False",
        "ArtifactUnreachable",
        "canary model fetch: https://models.example/m.onnx: connection refused",
    )
    assert "ArtifactUnreachable" in sim.status.message
    sim.run_until(lambda s: s.status.phase == "Degraded")
    elapsed = sim.now - sim.decisions[0].status.canary_started_at  # type: ignore[operator]
    assert elapsed >= timedelta(minutes=10)
    assert sim.status.rollback is not None
    assert sim.status.rollback.reason.startswith("ProgressDeadlineExceeded")
    assert all(d.canary_weight == 0 for d in sim.decisions)


def test_a_transient_failure_that_clears_lets_the_canary_proceed() -> None:
    sim = _failing_canary(UNREACHABLE)
    sim.run(3)
    sim.broken.clear()
    sim.fetch_failures.clear()
    sim.run_until(lambda s: s.status.weight > 0)
    assert _condition(sim, "ArtifactReady")[:2] == ("True", "NoFetchFailureSeen")


def test_the_first_revision_shows_its_fetch_failure_and_keeps_its_deadline() -> None:
    sim = Sim(canary_on().spec)
    sim.broken.add(sim.spec.revision())
    sim.fetch_failures[sim.spec.revision()] = DENIED
    sim.run(3)
    assert sim.status.phase == "Pending"  # nothing serves yet: nothing to roll back to
    assert _condition(sim, "ArtifactReady")[:2] == ("False", "ArtifactAccessDenied")


def test_new_pods_that_cannot_fetch_while_scaling_up_roll_back_at_once() -> None:
    sim = canary_on()
    sim.run_until(lambda s: (s.status.current_step or 0) >= 1)  # step 0's pods serve
    revision = sim.spec.revision()
    broke_at = sim.now
    sim.broken.add(revision)  # the next step's extra pods cannot fetch (key deleted, say)
    sim.fetch_failures[revision] = FetchFailure("ArtifactNotFound", "s3://b/k: NoSuchKey (404)")
    sim.run_until(lambda s: s.status.phase == "Degraded")
    rollback = next(d for d in sim.decisions if d.action == Action.ROLL_BACK)
    assert rollback.canary_weight == 0
    assert sim.status.rollback is not None
    assert sim.status.rollback.reason.startswith("ArtifactNotFound: ")
    # Well before the deadline counted from the step's measurement (10 minutes).
    assert sim.status.rollback.started_at - broke_at < timedelta(minutes=2)
