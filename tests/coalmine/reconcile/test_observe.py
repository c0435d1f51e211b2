"""The operator fetches metrics on exactly the ticks at which the engine folds a measurement:
it decides first without metrics and measures only when the decision says
``wants_measurement``; this checks that flag agrees with what the engine folds."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coalmine.rollout import decide
from coalmine.rollout.policy import MEASUREMENT_SLACK
from tests.coalmine.rollout.scenarios import canary_on
from tests.coalmine.rollout.sim import Sim


def _measured_once() -> Sim:
    """A canary serving at step 0 with one measurement folded."""
    sim = canary_on()
    sim.run_until(lambda s: s.status.analysis is not None)
    return sim


SIM = _measured_once()


def _agree(sim: Sim, elapsed: timedelta) -> tuple[bool, bool]:
    """(observe would fetch, the engine folds what it is given) ``elapsed`` after the last
    measurement."""
    status = sim.status
    assert status.analysis is not None
    now = status.analysis.measured_at + elapsed
    obs = sim.observe()
    assert obs.measurements is not None  # the engine is always offered a measurement here
    fetched = decide(sim.spec, status, replace(obs, measurements=None), now).wants_measurement
    analysis = decide(sim.spec, status, obs, now).status.analysis
    # A fold changes the record: here its list of recent verdicts grows (one so far).
    folded = analysis != status.analysis
    return fetched, folded


@pytest.mark.parametrize("share", [0.0, 0.5, 0.8, 0.85, MEASUREMENT_SLACK, 0.95, 1.0, 2.5])
def test_observe_fetches_exactly_when_the_engine_counts_a_measurement(share: float) -> None:
    interval = SIM.spec.canary.analysis.interval
    fetched, folded = _agree(SIM, interval * share)
    assert fetched == folded
    assert fetched == (share >= MEASUREMENT_SLACK)


@settings(max_examples=60, deadline=None)
@given(micros=st.integers(min_value=0, max_value=90_000_000))
def test_the_two_uses_cannot_disagree(micros: int) -> None:
    fetched, folded = _agree(SIM, timedelta(microseconds=micros))
    assert fetched == folded


def test_a_new_step_measures_at_once() -> None:
    sim = _measured_once()
    sim.run_until(lambda s: s.status.current_step == 1 and s.status.step_started_at is not None)
    status = sim.status
    assert status.analysis is not None and status.analysis.step == 0
    obs = sim.observe()
    assert decide(sim.spec, status, replace(obs, measurements=None), sim.now).wants_measurement
    analysis = decide(sim.spec, status, obs, sim.now).status.analysis
    assert analysis is not None and analysis.measured_at == sim.now and analysis.step == 1
