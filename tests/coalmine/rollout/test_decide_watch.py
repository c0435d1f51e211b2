"""Analysis keeps watching: a canary paused by analysis is still measured and still rolled
back by a failing check; a provider failing is told apart from no data; and a decision that
needs no measurement (rollback, abort, a new revision) says so, so the operator never queries
Prometheus before carrying it out."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from coalmine.rollout import Action, Controls, Measurement, SideMeasurement, decide
from coalmine.rollout.types import Decision

from .scenarios import FAIL, NAN, PASS, canary_on, event_reasons, finished
from .sim import Sim, value_check, with_version

REFUSED = (Measurement("custom", SideMeasurement(error="connection refused")),)


def _condition(d: Decision, kind: str) -> tuple[str, str]:
    found = next(c for c in d.status.conditions if c.type == kind)
    return found.status, found.reason


def _measure_then(values: list[tuple[Measurement, ...]]):  # type: ignore[no-untyped-def]
    """One scripted measurement per call, the last one repeating."""
    calls = [0]

    def measure(_: Sim) -> tuple[Measurement, ...]:
        value = values[min(calls[0], len(values) - 1)]
        calls[0] += 1
        return value

    return measure


def _paused_by_analysis(sim: Sim) -> None:
    sim.run_until(lambda s: s.status.phase == "Paused" and s.status.paused_by == "analysis")


def test_paused_by_no_data_is_still_measured_and_a_failing_check_rolls_back() -> None:
    no_data = value_check(NAN)
    sim = canary_on(measure=lambda s: no_data)
    _paused_by_analysis(sim)
    held_at = sim.status.weight
    assert held_at == 10
    measured = sim.status.analysis.measured_at  # type: ignore[union-attr]
    sim.run(4)
    assert sim.status.phase == "Paused"
    assert sim.status.analysis.measured_at > measured  # type: ignore[union-attr]
    assert all(d.canary_weight <= held_at for d in sim.decisions[-4:])
    sim.measure = lambda s: value_check(FAIL)
    sim.run_until(finished)
    assert sim.status.history[-1].outcome == "RolledBack"
    assert sim.status.rollback is not None and sim.status.rollback.check == "custom"
    assert "AnalysisFailed" in sim.status.rollback.reason
    # From the pause to the end, the weight only ever went down.
    paused_at = next(i for i, d in enumerate(sim.decisions) if d.status.phase == "Paused")
    weights = [d.canary_weight for d in sim.decisions[paused_at:]]
    assert weights == sorted(weights, reverse=True)


def test_paused_canary_with_data_back_stays_paused_until_retry() -> None:
    sim = canary_on(measure=lambda s: value_check(NAN))
    _paused_by_analysis(sim)
    sim.measure = lambda s: value_check(PASS)
    sim.run(6)
    assert sim.status.phase == "Paused" and sim.status.weight == 10
    assert sim.status.analysis is not None and sim.status.analysis.verdict == "pass"
    assert "checks pass again" in sim.status.message
    assert "coalmine.dev/retry" in sim.status.message
    assert event_reasons(sim).count("InconclusiveAnalysis") == 1  # one Warning, not per tick
    sim.controls = replace(sim.controls, retry=True)
    assert sim.tick().status.phase == "Progressing"
    sim.run_until(finished)
    assert sim.status.history[-1].outcome == "Promoted"


def test_provider_errors_have_their_own_condition_and_limit() -> None:
    sim = canary_on(measure=lambda s: REFUSED, policy={"providerErrorLimit": "2m"})
    sim.run_until(lambda s: s.status.analysis is not None)
    d = sim.decisions[-1]
    assert _condition(d, "AnalysisError") == ("True", "ProviderError")
    assert _condition(d, "Analysis") == ("Unknown", "ProviderError")
    analysis = sim.status.analysis
    assert analysis.provider_error_since is not None  # type: ignore[union-attr]
    assert analysis.inconclusive_since is None  # type: ignore[union-attr]
    assert analysis.checks[0].provider_error  # type: ignore[union-attr]
    message = next(c for c in d.status.conditions if c.type == "AnalysisError").message
    assert "custom" in message and "connection refused" in message
    _paused_by_analysis(sim)
    # Paused by the provider limit (2m), long before the inconclusive one (10m default).
    since = sim.status.analysis.provider_error_since  # type: ignore[union-attr]
    assert since is not None and sim.now - since < timedelta(minutes=4)
    assert sim.decisions[-1].reason == "AnalysisError"
    assert "AnalysisError" in event_reasons(sim)
    assert "metrics provider failing" in sim.status.message


def test_no_data_is_inconclusive_not_a_provider_error() -> None:
    sim = canary_on(measure=lambda s: value_check(NAN))
    sim.run_until(lambda s: s.status.analysis is not None)
    d = sim.decisions[-1]
    assert _condition(d, "AnalysisError") == ("False", "ProviderAnswering")
    assert _condition(d, "Analysis") == ("Unknown", "Inconclusive")
    assert sim.status.analysis.provider_error_since is None  # type: ignore[union-attr]
    assert sim.status.analysis.inconclusive_since is not None  # type: ignore[union-attr]


def test_an_answer_clears_the_provider_error_clock() -> None:
    sim = canary_on(measure=_measure_then([REFUSED, REFUSED, value_check(NAN)]))
    sim.run_until(
        lambda s: s.status.analysis is not None and len(s.status.analysis.checks[0].recent) == 3
    )
    analysis = sim.status.analysis
    assert analysis is not None and analysis.provider_error_since is None
    assert _condition(sim.decisions[-1], "AnalysisError")[0] == "False"


def test_provider_errors_past_their_limit_roll_back_when_the_policy_says_so() -> None:
    sim = canary_on(
        measure=lambda s: REFUSED,
        policy={"onInconclusive": "rollback", "providerErrorLimit": "3m"},
    )
    sim.run_until(finished)
    assert sim.status.rollback is not None
    assert sim.status.rollback.reason.startswith("ProviderErrorLimit")


def _decide_unmeasured(sim: Sim) -> Decision:
    """What the operator decides first: the same facts, without querying the metrics."""
    obs = replace(sim.observe(), measurements=None)
    return decide(sim.spec, sim.status, obs, sim.now)


def test_a_due_measurement_is_asked_for_and_then_folded() -> None:
    sim = canary_on()
    sim.run_until(lambda s: s.status.step_started_at is not None)
    first = _decide_unmeasured(sim)
    assert first.wants_measurement and first.status.analysis == sim.status.analysis
    now = sim.now
    measured = sim.tick()
    assert not measured.wants_measurement
    assert measured.status.analysis is not None and measured.status.analysis.measured_at == now


def test_abort_rollback_and_a_new_revision_never_ask_for_a_measurement() -> None:
    sim = canary_on(measure=lambda s: value_check(NAN))
    sim.run_until(lambda s: s.status.step_started_at is not None)
    sim.now += timedelta(minutes=5)  # a measurement is long due
    assert _decide_unmeasured(sim).wants_measurement
    aborted = replace(sim, controls=Controls(abort=True))
    decision = _decide_unmeasured(aborted)
    assert decision.action == Action.ROLL_BACK and not decision.wants_measurement
    newer = replace(sim, spec=with_version(sim.spec, "v3"))
    decision = _decide_unmeasured(newer)
    assert decision.reason == "NewRevisionTrafficToStable" and not decision.wants_measurement
    sim.measure = lambda s: value_check(FAIL)
    sim.run_until(lambda s: s.status.phase == "RollingBack")
    while sim.status.phase == "RollingBack":
        assert not _decide_unmeasured(sim).wants_measurement
        sim.tick()
