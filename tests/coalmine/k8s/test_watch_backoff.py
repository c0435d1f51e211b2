"""The watch cache's wait before listing again after a failure (client-go's reflector's)."""

from __future__ import annotations

import pytest

from coalmine.k8s.watchcache import Backoff


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_in_a_row_double_the_wait_up_to_thirty_seconds() -> None:
    clock = Clock()
    backoff = Backoff(clock, jitter=lambda: 0.0)
    waits = []
    for _ in range(8):
        waits.append(backoff.failed())
        clock.now += waits[-1] + 0.1  # the list after the wait fails again at once
    assert waits == pytest.approx([0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0])


def test_two_calm_minutes_start_again_from_the_shortest_wait() -> None:
    clock = Clock()
    backoff = Backoff(clock, jitter=lambda: 0.0)
    for _ in range(5):
        backoff.failed()
        clock.now += 1
    clock.now += 119  # a watch that then ran for 2 minutes: the API server is fine again
    assert backoff.failed() == pytest.approx(0.8)
    clock.now += 60  # a failure a minute after the last one still counts as in a row
    assert backoff.failed() == pytest.approx(1.6)


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
def test_jitter_stretches_each_wait_by_up_to_as_much_again(draw: float) -> None:
    # So stores that lost their watches together (an API server restart) do not list in step.
    backoff = Backoff(Clock(), jitter=lambda: draw)
    assert backoff.failed() == pytest.approx(0.8 * (1 + draw))
    assert backoff.failed() == pytest.approx(1.6 * (1 + draw))
