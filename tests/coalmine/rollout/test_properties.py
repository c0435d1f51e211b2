"""Invariants of ``decide`` under any sequence of measurements, controls, spec edits, broken
pods and a stuck router (hypothesis drives the simulator)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coalmine.api import ModelDeploymentStatus, RouterKind
from coalmine.api.status import HISTORY_LIMIT, RECENT_VERDICTS_LIMIT
from coalmine.rollout import (
    Action,
    Controls,
    Decision,
    Observations,
    observed_weight,
    plan_replicas,
)

from .scenarios import FAIL, NAN, PASS, canary_spec
from .sim import Sim, value_check, with_version

STATUS_BYTES_LIMIT = 16_000


@dataclass(frozen=True)
class World:
    """What changes before one tick."""

    value: float
    version: str | None
    paused: bool | None
    controls: Controls
    router_stuck: bool
    break_version: bool


worlds = st.builds(
    World,
    value=st.sampled_from([PASS, PASS, PASS, FAIL, NAN]),
    version=st.sampled_from([None] * 12 + ["v1", "v2", "v3"]),
    paused=st.sampled_from([None] * 10 + [True, False]),
    controls=st.builds(
        Controls,
        promote=st.sampled_from([False] * 10 + [True]),
        promote_full=st.sampled_from([False] * 20 + [True]),
        abort=st.sampled_from([False] * 15 + [True]),
        retry=st.sampled_from([False] * 8 + [True]),
    ),
    router_stuck=st.sampled_from([False] * 6 + [True]),
    break_version=st.sampled_from([False] * 15 + [True]),
)


def apply_world(sim: Sim, w: World) -> None:
    value = w.value
    sim.measure = lambda s: value_check(value)
    if w.version is not None:
        sim.spec = with_version(sim.spec, w.version)
    if w.paused is not None:
        sim.spec = sim.spec.model_copy(update={"paused": w.paused})
    sim.controls = replace(w.controls, paused=False)
    sim.router_stuck = w.router_stuck
    if w.break_version:
        sim.broken.add(sim.spec.revision())


def check_invariants(sim: Sim, obs: Observations, d: Decision, before: int) -> None:
    status = d.status
    steps = sim.spec.canary.steps
    # Never promote on analysis that is failing or inconclusive (only a person can skip it).
    if d.action == Action.PROMOTE and d.reason == "AllStepsPassed":
        assert status.analysis is not None
        assert all(c.verdict == "pass" for c in status.analysis.checks)
    if d.action == Action.PROMOTE and d.reason == "PromoteRequested":
        assert status.analysis is None or status.analysis.verdict != "fail"
    # The canary weight never exceeds the step being analysed; a rollback is at 0.
    if status.canary is not None and status.phase in ("Progressing", "Paused"):
        assert d.canary_weight <= steps[status.current_step or 0].weight
    # A paused canary never gains traffic, whoever holds it (analysis goes on meanwhile).
    if status.phase == "Paused":
        assert d.canary_weight <= before
    rolling_back = status.rollback is not None and status.rollback.stage != "Done"
    if status.phase == "RollingBack" or rolling_back:
        assert d.canary_weight == 0
    # The weight goes up only onto a canary observed ready on the revision that gets it.
    if d.canary_weight > before:
        assert d.canary is not None and obs.canary is not None
        assert obs.canary.ready_on(d.canary.revision.revision)
    # Canary pods are removed or replaced only after the router was seen at 0.
    if obs.canary is not None and obs.canary.replicas > 0:
        replaced = d.canary is None or d.canary.revision.revision != obs.canary.revision
        if replaced:
            assert obs.canary_weight == 0, (d.action, d.reason)
    # Status stays small, valid, and round-trips through JSON.
    wire = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert len(json.dumps(wire)) < STATUS_BYTES_LIMIT
    assert ModelDeploymentStatus.model_validate(wire) == status
    assert len(status.history) <= HISTORY_LIMIT
    if status.analysis is not None:
        assert all(len(c.recent) <= RECENT_VERDICTS_LIMIT for c in status.analysis.checks)
    assert sorted(c.type for c in status.conditions) == [
        "Analysis",
        "AnalysisError",
        "ArtifactReady",
        "Progressing",
        "Promoted",
        "Ready",
        "RolledBack",
    ]
    # What a pipeline waits on: Promoted only with no canary in flight, never both at once.
    said = {c.type: c.status for c in status.conditions}
    if said["Promoted"] == "True":
        assert status.phase == "Healthy" and status.canary is None
    assert (said["RolledBack"] == "True") == (status.phase == "Degraded")
    assert not (said["Promoted"] == said["RolledBack"] == "True")


GATEWAY = {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}}
TRAFFIC = {
    "replicas": {},
    "replicas-scale-down-stable": {"scaleDownStable": True},
    "gateway": GATEWAY,
}


@pytest.mark.parametrize("traffic", TRAFFIC.values(), ids=TRAFFIC.keys())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=st.lists(worlds, min_size=1, max_size=120))
def test_invariants_hold_under_any_sequence(traffic: dict[str, Any], sequence: list[World]) -> None:
    sim = Sim(canary_spec(traffic=traffic))
    sim.healthy_on("v1")
    for w in sequence:
        apply_world(sim, w)
        before = sim.decisions[-1].canary_weight
        d = sim.tick()
        check_invariants(sim, sim.observed[-1], d, before)


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=50, max_value=400))
def test_status_size_bounded_over_many_rollouts(rollouts: int) -> None:
    """Hundreds of rollouts and thousands of measurements: history and records stay capped."""
    sim = Sim(canary_spec(steps=[{"weight": 50, "pause": "30s"}]))
    sim.healthy_on("v1")
    for i in range(rollouts // 10):
        sim.spec = with_version(sim.spec, f"v{i + 2}")
        sim.measure = (lambda s: value_check(FAIL)) if i % 2 else (lambda s: value_check(PASS))
        sim.run_until(lambda s: s.status.canary is None and s.status.phase != "Pending")
        wire = sim.status.model_dump(mode="json", by_alias=True, exclude_none=True)
        assert len(json.dumps(wire)) < STATUS_BYTES_LIMIT
    assert len(sim.status.history) == min(HISTORY_LIMIT, rollouts // 10)


@given(
    total=st.integers(min_value=1, max_value=1000),
    weight=st.integers(min_value=0, max_value=100),
    router=st.sampled_from(list(RouterKind)),
    scale_down=st.booleans(),
)
def test_replica_plans(total: int, weight: int, router: RouterKind, scale_down: bool) -> None:
    stable, canary = plan_replicas(total, weight, router, scale_down)
    assert (canary > 0) == (weight > 0)  # a canary with traffic has a pod; none without
    if not scale_down or router == RouterKind.GATEWAY_API:
        assert stable == total  # full capacity kept until promotion
    if 0 < weight < 100:
        assert stable >= 1
    if router == RouterKind.REPLICAS and not scale_down and 0 < weight < 100 and total >= 10:
        # With enough pods the pod ratio is close to the weight asked for.
        assert abs(observed_weight(stable, canary, True) - weight) <= 100 / total + 1
