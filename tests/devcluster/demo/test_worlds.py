"""Which cluster the demo picks, and that it says why (the worlds themselves run in the
integration tier, tests/devcluster/demo/test_demo.py, and the e2e tier,
e2e/test_demo_on_node.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.devcluster.demo import worlds
from e2e.devcluster.demo.worlds import NodeWorld, StandInWorld, choose


def test_auto_picks_the_stand_in_and_says_why_when_the_node_cannot_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worlds, "node_problems", lambda: ["not root (needs a bridge)"])
    said: list[str] = []
    world = choose("auto", tmp_path, said.append)
    assert isinstance(world, StandInWorld)
    assert any("not root (needs a bridge)" in line for line in said), said


def test_auto_picks_the_node_when_nothing_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worlds, "node_problems", lambda: [])
    assert isinstance(choose("auto", tmp_path, print), NodeWorld)


@pytest.mark.parametrize(("mode", "kind"), [("node", NodeWorld), ("standin", StandInWorld)])
def test_an_explicit_choice_is_not_second_guessed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, kind: type
) -> None:
    def unexpected() -> list[str]:
        raise AssertionError("an explicit --cluster must not probe the machine")

    monkeypatch.setattr(worlds, "node_problems", unexpected)
    assert isinstance(choose(mode, tmp_path, print), kind)
