"""What makes /healthz fail, with a fake clock; and the endpoint itself over a real socket."""

from __future__ import annotations

import httpx

from coalmine.health import Health, serve
from coalmine.k8s import ObjectRef


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def _health(clock: Clock) -> Health:
    health = Health(stall_after=30, watch_grace=20, clock=clock)
    health.loop_beat()
    return health


def test_ticks_that_keep_ending_are_live_and_a_stuck_one_is_not() -> None:
    clock = Clock()
    health = _health(clock)
    for _ in range(10):  # a ticks every 5 s; b ticks rarely (steady): neither is a problem
        health.tick_started("ml/a")
        clock.now += 5
        health.loop_beat()
        health.tick_done("ml/a")
    assert health.problems() == []
    health.tick_started("ml/b")  # b's reconcile hangs: its tick never ends
    for _ in range(7):
        health.tick_started("ml/a")
        clock.now += 5
        health.loop_beat()
        health.tick_done("ml/a")
    assert health.problems() == ["ml/b: tick running for 35s, not completed"]
    health.forget("ml/b")  # deleted: no longer ours
    assert health.problems() == []


def test_a_tick_that_fell_due_long_ago_and_never_started_fails_liveness() -> None:
    clock = Clock()
    health = _health(clock)
    due = clock.now
    health.overdue_since = lambda: due  # the schedule's earliest planned tick
    clock.now += 30
    health.loop_beat()
    assert health.problems() == []
    clock.now += 5
    health.loop_beat()
    assert health.problems() == ["ticks not starting: one fell due 35s ago"]


def test_a_stuck_event_loop_fails_liveness() -> None:
    clock = Clock()
    health = _health(clock)
    clock.now += 31
    assert health.problems() == ["the event loop has not run for longer than the stall limit"]


def test_a_write_that_never_comes_back_on_the_watch_means_the_watch_is_dead() -> None:
    clock = Clock()
    health = _health(clock)
    health.wrote_status(ObjectRef("ModelDeployment", "ml", "a"), "41")
    clock.now += 10
    health.loop_beat()
    health.watched("ml/a", "40")  # an older event: not the write
    assert health.problems() == []
    clock.now += 11
    health.loop_beat()
    assert health.problems() == ["ml/a: watch silent 21s after writing version 41"]
    health.watched("ml/a", "43")  # a later event implies the write was seen
    assert health.problems() == []


def test_a_standby_is_live_while_its_elector_keeps_trying() -> None:
    clock = Clock()
    attempts = [clock.now]
    health = Health(stall_after=30, watch_grace=20, clock=clock)
    health.leading = lambda: False
    health.standby_alive_since = lambda: attempts[0]
    clock.now += 20
    assert health.problems() == []  # no loop beat needed: a standby runs no kopf
    clock.now += 11
    assert health.problems() == ["standby: no attempt to take the Lease for 31s"]


def test_the_endpoint_answers_500_with_the_reasons_when_not_live() -> None:
    clock = Clock()
    health = _health(clock)
    server = serve(health, 0, host="127.0.0.1")
    url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    try:
        live = httpx.get(url, timeout=5)
        assert live.status_code == 200 and live.json()["role"] == "leader"
        clock.now += 31
        dead = httpx.get(url, timeout=5)
        assert dead.status_code == 500
        assert dead.json()["problems"] == [
            "the event loop has not run for longer than the stall limit"
        ]
        assert httpx.get(url.replace("healthz", "other"), timeout=5).status_code == 404
    finally:
        server.shutdown()


def test_the_report_says_how_long_ago_a_reconcile_last_finished() -> None:
    clock = Clock()
    health = _health(clock)
    assert health.report()[1]["seconds_since_tick"] is None  # none yet
    health.reconciled()
    clock.now += 31.2
    assert health.report()[1]["seconds_since_tick"] == 31.2
    health.reconciled()
    assert health.report()[1]["seconds_since_tick"] == 0.0
