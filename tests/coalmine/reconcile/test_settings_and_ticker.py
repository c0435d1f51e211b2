from __future__ import annotations

import asyncio

import pytest

import coalmine.handlers as handlers
from coalmine.handlers import Ticker
from coalmine.k8s import ApiError
from coalmine.reconcile import Deps
from coalmine.settings import OperatorSettings, load_settings
from tests.coalmine.fakes import FakeKube, FakeProvider


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COALMINE_NAMESPACES", "ml, prod")
    monkeypatch.setenv("COALMINE_ALLOW_PICKLE", "true")
    monkeypatch.setenv("COALMINE_SERVING_PORT", "9000")  # the server's prefix: not ours
    settings = load_settings(liveness_port=0)
    assert settings.namespaces == ["ml", "prod"]
    assert settings.allow_pickle is True and settings.liveness_port == 0


def _ticker(monkeypatch: pytest.MonkeyPatch, calls: list[str], fail: bool = False) -> Ticker:
    def fake_reconcile(_deps: Deps, namespace: str, name: str) -> float:
        calls.append(name)
        if fail:
            raise ApiError(500, "boom")
        return 60.0

    monkeypatch.setattr(handlers, "reconcile", fake_reconcile)
    settings = OperatorSettings(tick_seconds=60)
    return Ticker(Deps(kube=FakeKube(), providers=lambda a, t: FakeProvider(), settings=settings))


def test_timer_ticks_wait_for_the_requeue_time_and_pokes_cut_it_short(
    monkeypatch: pytest.MonkeyPatch,
):
    calls: list[str] = []
    ticker = _ticker(monkeypatch, calls)

    async def scenario() -> None:
        await ticker.tick("ml", "iris", force=False)
        await ticker.tick("ml", "iris", force=False)  # not due yet: skipped
        ticker.poke("ml", "iris")
        await ticker.tick("ml", "iris", force=False)
        await ticker.tick("ml", "iris", force=True)

    asyncio.run(scenario())
    assert calls == ["iris", "iris", "iris"]


def test_api_errors_do_not_escape_to_kopf(monkeypatch: pytest.MonkeyPatch):
    calls: list[str] = []
    asyncio.run(_ticker(monkeypatch, calls, fail=True).tick("ml", "iris", force=True))
    assert calls == ["iris"]
