"""Bench B8's arithmetic: the rollback's timeline from the clients' answers, and the floor."""

from __future__ import annotations

import pytest

from bench.rollback_timeline import (
    Answer,
    Rates,
    back_to_stable_after,
    decide_seconds,
    extract_timeline,
    floor_seconds,
    none_in,
    observed_rates,
    realized_decide_seconds,
)
from coalmine.rollout.stats import share_worse_e_value, wilson_bounds


def _ok(sent: float, version: str) -> Answer:
    return Answer(sent, sent + 0.01, 200, version)


def _fault(sent: float) -> Answer:
    return Answer(sent, sent + 0.02, 500, None, canary_fault=True)


def _rollback_story() -> list[Answer]:
    """Stable v1 alone until 10s; from 10s to 20s every other request reaches the canary v2,
    whose fourth answer is its first error (at 10.6s) and every fourth after it; from 20s on
    stable only. One request every 0.1s."""
    answers = []
    for tick in range(300):
        sent = tick / 10
        if 10 <= sent < 20 and tick % 2 == 0:
            canary_tick = (tick - 100) // 2
            answers.append(_fault(sent) if canary_tick % 4 == 3 else _ok(sent, "v2"))
        else:
            answers.append(_ok(sent, "v1"))
    return answers


def test_the_timeline_runs_from_the_first_bad_answer_to_the_first_request_after_the_canary():
    timeline = extract_timeline(_rollback_story(), "v2", route_changed=19.9)

    assert timeline.first_bad == pytest.approx(10.62)  # its receipt, not its sending
    assert timeline.back_on_stable == pytest.approx(19.9)  # after the canary's last, at 19.8
    assert timeline.seconds == pytest.approx(19.9 - 10.62)
    assert timeline.canary_answers == 50
    assert timeline.answers_after == 101


def test_rates_are_measured_from_the_canarys_first_answer_to_the_route_change():
    rates = extract_timeline(_rollback_story(), "v2", route_changed=15.0).rates

    # 10.0 .. 14.9: 50 requests, 25 to each side, over 4.9s; a quarter of the canary's failed
    assert rates.canary_rps == pytest.approx(25 / 4.9)
    assert rates.stable_rps == pytest.approx(25 / 4.9)
    assert rates.canary_error_rate == pytest.approx(6 / 25)
    assert rates.stable_error_rate == 0


def test_a_run_without_a_bad_answer_or_a_way_back_has_no_timeline():
    healthy = [_ok(t / 10, "v2" if t % 2 else "v1") for t in range(50)]
    with pytest.raises(ValueError, match="no bad answer"):
        extract_timeline(healthy, "v2", route_changed=4.0)
    stuck = [_ok(0.0, "v1"), _fault(0.1), _ok(0.2, "v2")]
    with pytest.raises(ValueError, match="never left"):
        extract_timeline(stuck, "v2", route_changed=0.15)


def test_stable_errors_count_against_stable_not_the_canary():
    answers = [_ok(0.0, "v2"), Answer(0.5, 0.6, 503, None), _ok(1.0, "v1"), _fault(2.0)]
    rates = observed_rates(answers, "v2")
    assert rates.canary_error_rate == 0.5 and rates.stable_error_rate == 0.5


def test_the_decision_time_is_the_first_moment_the_operators_test_fails_the_canary():
    rates = Rates(canary_rps=20, canary_error_rate=0.2, stable_rps=20, stable_error_rate=0.0)
    t = decide_seconds(rates, min_samples=10)

    def fails(seconds: float) -> bool:
        n, errors = int(20 * seconds), int(4 * seconds)
        e = share_worse_e_value(errors, n, 0, int(20 * seconds))
        return e >= 40 and wilson_bounds(errors, n, 0.975)[0] >= 0.01

    assert t == 3.0  # 12 errors of 60 against none of 60
    assert fails(t) and not fails(t - 0.01)


def test_the_decision_waits_for_min_samples_and_for_the_rate_floor():
    flood = Rates(canary_rps=20, canary_error_rate=1.0, stable_rps=20, stable_error_rate=0.0)
    assert decide_seconds(flood, min_samples=10) < decide_seconds(flood, min_samples=100)
    assert decide_seconds(flood, min_samples=100) == 5.0  # 100 requests a side at 20/s
    # Twice stable's errors but at 0.4%: below the floor of 1%, so never failed
    tiny = Rates(canary_rps=200, canary_error_rate=0.004, stable_rps=200, stable_error_rate=0.002)
    with pytest.raises(ValueError, match="does not decide"):
        decide_seconds(tiny, min_samples=10, limit=120)


def test_a_slower_regression_takes_longer_to_decide():
    fast = Rates(20, 0.2, 20, 0.0)
    slow = Rates(20, 0.05, 20, 0.0)
    assert decide_seconds(slow, min_samples=10) == 4 * decide_seconds(fast, min_samples=10)


def test_the_realized_decision_reads_the_answers_in_the_order_they_arrived():
    answers = _rollback_story()
    first_bad = extract_timeline(answers, "v2", route_changed=19.9).first_bad
    realized = realized_decide_seconds(answers, "v2", first_bad, min_samples=10)
    # e >= 40 needs about a dozen canary errors with none on stable: every fourth of 5/s
    assert realized is not None and 5 < realized < 12
    assert realized_decide_seconds(answers[:100], "v2", 0.0, min_samples=10) is None


def test_the_route_change_is_the_first_stable_only_selector_after_it_spanned_the_canary():
    changes = [(0.0, True), (5.0, False), (9.0, True), (15.0, False), (20.0, True)]
    assert back_to_stable_after(changes, since=1.0) == 9.0
    assert back_to_stable_after(changes, since=6.0) == 9.0  # spanning carried into 6.0
    assert back_to_stable_after(changes, since=10.0) == 20.0
    with pytest.raises(ValueError, match="never went back"):
        back_to_stable_after(changes[:4], since=10.0)


def test_floor_and_the_interval_for_no_false_rollback_in_twenty():
    assert floor_seconds(1.0, 3.0, 0.25) == 4.25
    wilson, exact = none_in(20)
    assert wilson == pytest.approx(0.161, abs=0.001)
    assert exact == pytest.approx(1 - 0.025 ** (1 / 20))  # Clopper-Pearson, 0 of 20
