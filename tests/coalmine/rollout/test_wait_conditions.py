"""The ``Promoted`` and ``RolledBack`` conditions a pipeline waits on (``kubectl wait``):
True exactly when the spec's revision ended that way, and stamped with the generation."""

from __future__ import annotations

from dataclasses import replace

from coalmine.api import ModelDeploymentStatus
from coalmine.rollout import decide

from .scenarios import FAIL, PASS, canary_on, finished, script
from .sim import Sim


def _condition(status: ModelDeploymentStatus, kind: str) -> tuple[str, str]:
    found = next(c for c in status.conditions if c.type == kind)
    return found.status, found.reason


def _promoted_ticks(sim: Sim) -> list[bool]:
    return [_condition(d.status, "Promoted")[0] == "True" for d in sim.decisions]


def test_promoted_turns_true_only_once_the_new_revision_serves_alone() -> None:
    sim = canary_on(measure=script(PASS))
    sim.run_until(finished)
    promoted = _promoted_ticks(sim)
    assert promoted[-1] and not any(promoted[:-1]), promoted  # never during the canary
    assert sim.status.stable is not None and sim.status.stable.version == "v2"
    assert _condition(sim.status, "RolledBack") == ("False", "NotRolledBack")
    # While the canary ran, Promoted said where it was.
    assert _condition(sim.decisions[0].status, "Promoted") == ("False", sim.decisions[0].reason)


def test_rolled_back_turns_true_with_the_rollbacks_reason() -> None:
    sim = canary_on(measure=script(FAIL))
    sim.run_until(finished)
    assert sim.status.phase == "Degraded"
    assert _condition(sim.status, "RolledBack") == ("True", "RolledBack")
    rolled = next(c for c in sim.status.conditions if c.type == "RolledBack")
    assert sim.status.rollback is not None and rolled.message == sim.status.rollback.reason
    assert not any(_promoted_ticks(sim))


def test_every_condition_carries_the_generation_it_was_derived_for() -> None:
    sim = canary_on(measure=script(PASS))
    observed = replace(sim.observe(), generation=7)
    decision = decide(sim.spec, sim.status, observed, sim.now)
    assert {c.observed_generation for c in decision.status.conditions} == {7}
    # The tick that sees the new revision starts its canary: the previous one's
    # Promoted=True is replaced in that same status write.
    assert _condition(decision.status, "Promoted")[0] == "False"
