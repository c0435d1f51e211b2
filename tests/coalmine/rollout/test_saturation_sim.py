"""The saturation check through whole simulated rollouts (the real ``decide()``): a canary
that refuses twice the limit is rolled back by that check; a flood on both sides is held for
a person, never blamed on the canary. Its published power is ``bench.power --saturation``."""

from __future__ import annotations

from .errorsim import Canary, default_spec, outcomes

SATURATION = {
    "interval": "10s",
    "window": "10s",
    "checks": [{"name": "saturation", "saturation": {"max": 0.05}}],
}


def test_twice_the_limit_is_rolled_back_by_saturation() -> None:
    spec = default_spec(analysis=SATURATION)
    ends = outcomes(spec, 100, Canary(canary_refused=0.10, stable_refused=0.01), 20, seed=1)
    assert [(o.outcome, o.check) for o in ends] == [("RolledBack", "saturation")] * 20


def test_a_flood_on_both_sides_holds_and_rolls_nothing_back() -> None:
    spec = default_spec(analysis=SATURATION)
    ends = outcomes(spec, 100, Canary(canary_refused=0.10, stable_refused=0.10), 10, seed=2)
    assert [o.outcome for o in ends] == ["Paused"] * 10


def test_no_refusals_drawn_means_nothing_refused() -> None:
    spec = default_spec(analysis=SATURATION)
    ends = outcomes(spec, 100, Canary(), 5, seed=3)
    assert [o.outcome for o in ends] == ["Promoted"] * 5
