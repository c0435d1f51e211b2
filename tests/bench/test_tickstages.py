"""``bench.tickstages``: a stage's CPU per tick between two of the operator's snapshots."""

from __future__ import annotations

import time

from bench import tickstages


def snapshot(process: float, loop: float, **stages: tuple[float, int]) -> dict[str, object]:
    return {
        "at": 0.0,
        "stages": {name: list(value) for name, value in stages.items()},
        "event loop thread": loop,
        "process": process,
    }


def test_stages_are_milliseconds_per_tick_of_the_window_largest_first() -> None:
    before = snapshot(1.0, 0.5, reconcile=(2.0, 100), act=(0.5, 100))
    after = snapshot(1.5, 0.6, reconcile=(2.3, 150), act=(0.55, 150), write=(0.1, 50))
    figures = tickstages.per_tick(before, after)
    assert figures["ticks"] == 50
    assert figures["process"] == 10.0 and figures["event loop thread"] == 2.0
    stages = [key for key in figures if key not in ("ticks", "process", "event loop thread")]
    assert stages == ["reconcile", "write", "act"]
    assert (figures["reconcile"], figures["write"], figures["act"]) == (6.0, 2.0, 1.0)


def test_a_timed_function_adds_its_own_cpu_and_a_call() -> None:
    def busy() -> str:
        deadline = time.thread_time() + 0.01
        while time.thread_time() < deadline:
            pass
        return "done"

    assert tickstages.timed("busy-test", busy)() == "done"
    assert tickstages.CALLS["busy-test"] == 1 and tickstages.CPU["busy-test"] >= 0.01
