from __future__ import annotations

import asyncio
import threading
import time

import pytest

import coalmine.handlers as handlers
from coalmine.handlers import Ticker
from coalmine.health import Health
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


def _ticker(
    monkeypatch: pytest.MonkeyPatch, calls: list[str], fail: bool = False, leading: bool = True
) -> Ticker:
    def fake_reconcile(_deps: Deps, namespace: str, name: str) -> float:
        calls.append(name)
        if fail:
            raise ApiError(500, "boom")
        return 60.0

    monkeypatch.setattr(handlers, "reconcile", fake_reconcile)
    settings = OperatorSettings(tick_seconds=60)
    return Ticker(
        Deps(kube=FakeKube(), providers=lambda a, t: FakeProvider(), settings=settings),
        Health(stall_after=60, watch_grace=60),
        leading=lambda: leading,
    )


def test_the_next_tick_is_planned_from_when_this_one_began(monkeypatch: pytest.MonkeyPatch):
    """A tick that waits half a second for its measurement keeps its 2 s cadence."""

    def slow_reconcile(_deps: Deps, namespace: str, name: str) -> float:
        time.sleep(0.5)
        return 2.0

    monkeypatch.setattr(handlers, "reconcile", slow_reconcile)
    ticker = Ticker(
        Deps(kube=FakeKube(), providers=lambda a, t: FakeProvider(), settings=OperatorSettings()),
        Health(stall_after=60, watch_grace=60),
    )
    began = time.monotonic()
    asyncio.run(ticker.tick("ml", "iris"))
    planned = ticker.schedule.get(("ml", "iris"))
    assert planned is not None and began + 2.0 <= planned < began + 2.3, planned - began


def test_scheduled_ticks_wait_for_the_requeue_time_and_pokes_cut_it_short(
    monkeypatch: pytest.MonkeyPatch,
):
    calls: list[str] = []
    ticker = _ticker(monkeypatch, calls)

    async def scenario() -> None:
        await ticker.tick("ml", "iris")  # an event's tick: the next is due in 60 s
        assert ticker.schedule.due(time.monotonic()) == [], "not due yet"
        ticker.poke("ml", "iris")  # a child changed
        due = ticker.schedule.due(time.monotonic())
        assert [key for key, _ in due] == [("ml", "iris")]
        await ticker.scheduled(*due[0])
        assert ticker.schedule.get(("ml", "iris")) is not None, "and the next one is planned"

    asyncio.run(scenario())
    assert calls == ["iris", "iris"]


def test_an_object_deleted_during_its_tick_is_not_planned_again(monkeypatch: pytest.MonkeyPatch):
    """Without a finalizer kopf may never call on_delete: the watch's DELETED event forgets
    the object, and a tick that was running then must not plan another."""
    calls: list[str] = []
    ticker = _ticker(monkeypatch, calls)

    async def scenario() -> None:
        await ticker.tick("ml", "iris")
        due = ticker.schedule.get(("ml", "iris"))
        assert due is not None
        running = asyncio.create_task(ticker.scheduled(("ml", "iris"), due))
        ticker.forget("ml", "iris")  # DELETED arrives while that tick runs
        await running

    asyncio.run(scenario())
    assert calls == ["iris", "iris"]
    assert ticker.schedule.get(("ml", "iris")) is None


def test_a_poke_for_an_object_the_schedule_does_not_know_is_ignored(
    monkeypatch: pytest.MonkeyPatch,
):
    """A child's event for a ModelDeployment already forgotten (deleted) plans no tick."""
    ticker = _ticker(monkeypatch, [])
    ticker.poke("ml", "gone")
    assert ticker.schedule.get(("ml", "gone")) is None


def test_a_process_that_does_not_lead_reconciles_nothing(monkeypatch: pytest.MonkeyPatch):
    calls: list[str] = []
    ticker = _ticker(monkeypatch, calls, leading=False)
    asyncio.run(ticker.tick("ml", "iris"))  # a change kopf saw
    asyncio.run(ticker.scheduled(("ml", "iris"), 0.0))  # a planned tick
    assert calls == []


def test_api_errors_do_not_escape_to_kopf(monkeypatch: pytest.MonkeyPatch):
    calls: list[str] = []
    asyncio.run(_ticker(monkeypatch, calls, fail=True).tick("ml", "iris"))
    assert calls == ["iris"]


def test_objects_stuck_on_a_slow_prometheus_do_not_stall_another_objects_tick(
    monkeypatch: pytest.MonkeyPatch,
):
    """Twelve objects blocked in their reconcile (asyncio's default executor has 6 threads on
    two cores: they used to fill it) while another object's tick still runs at once."""
    release = threading.Event()
    done: list[str] = []

    def fake_reconcile(_deps: Deps, namespace: str, name: str) -> float:
        if name.startswith("stuck"):
            release.wait(30)
        done.append(name)
        return 60.0

    monkeypatch.setattr(handlers, "reconcile", fake_reconcile)
    settings = OperatorSettings(tick_seconds=60, reconcile_workers=16)
    ticker = Ticker(
        Deps(kube=FakeKube(), providers=lambda a, t: FakeProvider(), settings=settings),
        Health(stall_after=60, watch_grace=60),
    )

    async def scenario() -> float:
        stuck = [asyncio.create_task(ticker.tick("ml", f"stuck-{i}")) for i in range(12)]
        await asyncio.sleep(0.2)  # all twelve are in their reconcile now
        started = time.monotonic()
        await asyncio.wait_for(ticker.tick("ml", "other"), timeout=5)
        took = time.monotonic() - started
        release.set()
        await asyncio.gather(*stuck)
        return took

    try:
        took = asyncio.run(scenario())
    finally:
        release.set()
        ticker.close()
    assert took < 1.0, took
    assert done[0] == "other" and len(done) == 13


def test_the_reconcile_pool_is_sized_by_the_setting(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COALMINE_RECONCILE_WORKERS", "48")
    monkeypatch.setenv("COALMINE_ANALYSIS_BUDGET", "30")
    settings = load_settings(liveness_port=0)
    assert settings.reconcile_workers == 48
    assert settings.analysis_budget.total_seconds() == 30


def test_an_object_ticks_on_first_sight_and_on_spec_labels_or_annotations_not_on_status(
    monkeypatch: pytest.MonkeyPatch,
):
    ticker = _ticker(monkeypatch, [])
    body = {
        "metadata": {"uid": "u1", "generation": 1, "labels": {"team": "a"}, "annotations": {}},
        "status": {"phase": "Progressing"},
    }

    def changed() -> bool:
        return ticker.changed("ml", "iris", body)

    assert changed(), "first sight: kopf's first list, or a new object"
    body["status"] = {"phase": "Progressing", "weight": 20}  # the operator's own status write
    assert not changed()
    body["metadata"]["generation"] = 2  # a new spec
    assert changed() and not changed()
    body["metadata"]["annotations"] = {"coalmine.dev/promote": "true"}  # a manual control
    assert changed()
    body["metadata"]["annotations"]["kopf.zalando.org/last-handled-configuration"] = "{}"
    assert not changed(), "an older operator's kopf bookkeeping is nobody's request"
    body["metadata"]["labels"] = {"team": "b"}
    assert changed()
    body["metadata"]["deletionTimestamp"] = "2026-12-02T00:00:00Z"
    assert changed(), "a delete waiting on a finalizer ticks (to release an old one)"
    ticker.forget("ml", "iris")
    assert changed(), "seen again after a delete: a new object of the same name"
