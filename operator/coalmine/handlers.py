"""kopf registrations only: every event and every scheduled tick calls the same reconcile.

Registered into a fresh registry by :func:`register` (called by ``coalmine operator``) rather
than at import time, so the tick period comes from the settings and importing this module
has no side effects.

The only in-memory state is a per-object lock (two handlers of one object never reconcile at
once) and the time the next tick is due (``coalmine.schedule``: one task starts ticks as they
fall due, instead of a kopf timer per object waking every few seconds); a restart loses nothing
but an early tick (kopf's first list shows every object at start, and each ticks then).

Reconciles run in the Ticker's own thread pool, sized by ``reconcileWorkers``, not in asyncio's
default executor (``min(32, cpus + 4)`` threads: 6 on two cores, so six objects waiting on a
silent Prometheus stalled every other object's tick, rollbacks included).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from coalmine.api import GROUP, PLURAL, VERSION
from coalmine.health import Health
from coalmine.k8s import ApiError, ConflictError, UnreachableError
from coalmine.manifests import LABEL_MD, MANAGED_BY
from coalmine.reconcile import Deps, reconcile
from coalmine.schedule import Key, Schedule
from coalmine.settings import OperatorSettings

log = logging.getLogger(__name__)
OURS = dict(MANAGED_BY)
KOPF_ANNOTATIONS = "kopf.zalando.org/"


class Ticker:
    """Serialises reconciles per object and schedules each object's next tick."""

    def __init__(
        self, deps: Deps, health: Health, leading: Callable[[], bool] = lambda: True
    ) -> None:
        self._deps, self._health, self._leading = deps, health, leading
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.schedule = Schedule()
        self._known: set[Key] = set()  # objects kopf has shown us and not seen deleted
        self._essence: dict[Key, tuple[Any, ...]] = {}  # what last made each object tick
        self._pool = ThreadPoolExecutor(
            max_workers=deps.settings.reconcile_workers, thread_name_prefix="reconcile"
        )
        health.overdue_since = self._overdue_since

    async def tick(self, namespace: str, name: str, *, due: float | None = None) -> None:
        """Reconcile now (``due``: when it was due, for the lag metric) and plan the next."""
        if due is None:  # an event's tick: the object exists
            self._known.add((namespace, name))
        key = f"{namespace}/{name}"
        if not self._leading():
            # Stepping down (kopf runs only on the leader): from the renew deadline on,
            # nothing starts; the client refuses the writes of a tick already running.
            return
        due = time.monotonic() if due is None else due
        requeue: float | None = None
        self._health.tick_started(key)
        async with self._locks[key]:
            began = time.monotonic()
            try:
                loop = asyncio.get_running_loop()
                requeue = await loop.run_in_executor(self._pool, self._timed, due, namespace, name)
            except ConflictError:
                # The object changed after this tick read it (a control annotation, a
                # person, another writer): its status write was refused and its Events
                # dropped; the next tick decides again from a fresh read.
                log.info("%s/%s: changed during the tick; deciding again", namespace, name)
                requeue = self._deps.settings.tick_seconds
            except (ApiError, UnreachableError) as exc:
                # The next tick retries from a fresh read; kopf's own retry back-off (60 s by
                # default) would stall an analysis that runs every few seconds.
                log.warning("%s/%s: API error, retrying next tick: %s", namespace, name, exc)
                self._deps.metrics.error("api")
                requeue = self._deps.settings.tick_seconds
            finally:  # whatever happened, the object ticks again
                # Counted from when this tick began, as the engine's timestamps are: an
                # analysis every 10 s stays every 10 s however long a tick waits for its
                # measurement (a tick never starts before the last one ended).
                wait = requeue or self._deps.settings.tick_seconds
                later = max(time.monotonic(), began + wait)
                if (namespace, name) in self._known:  # deleted meanwhile: no more ticks
                    self.schedule.set((namespace, name), later)
                self._health.reconciled()
                self._health.tick_done(key)

    async def scheduled(self, key: Key, due: float) -> None:
        await self.tick(*key, due=due)

    def _overdue_since(self) -> float | None:
        """When the earliest planned tick fell due, if it has: liveness fails when that is
        long ago (the schedule's task died, or the loop is stuck)."""
        next_at = self.schedule.next_at()
        return next_at if next_at is not None and next_at <= time.monotonic() else None

    def _timed(self, due: float, namespace: str, name: str) -> float | None:
        """One reconcile in the pool, counted: how late it started (queued for a worker or the
        object's lock, or the timer's granularity), how long it ran, whether it blew up."""
        metrics = self._deps.metrics
        started = time.monotonic()
        metrics.tick_lag.observe(max(0.0, started - due))
        metrics.seen((namespace, name))
        try:
            return reconcile(self._deps, namespace, name)
        except (ApiError, UnreachableError):
            raise  # counted by the tick as "api"
        except Exception:
            metrics.error("unexpected")
            raise
        finally:
            metrics.ticks.inc()
            metrics.tick_duration.observe(time.monotonic() - started)

    def saw(self, body: Any) -> None:
        """kopf saw this version of an object first: the tick it starts must not read an older
        one from the operator's own watch cache (``coalmine.k8s.cached``)."""
        witness = getattr(self._deps.kube, "saw", None)
        if witness is not None:
            witness(body)

    def changed(self, namespace: str, name: str, body: Any) -> bool:
        """First sight of this object, or a new spec (generation), labels, annotations (the
        manual controls) or deletion since the last time this said so. A status write (every
        analysis makes one) changes none of these."""
        meta = body.get("metadata", {})
        annotations = {
            key: value
            for key, value in (meta.get("annotations") or {}).items()
            if not key.startswith(KOPF_ANNOTATIONS)  # an older operator's kopf bookkeeping
        }
        essence = (
            meta.get("uid"), meta.get("generation"), meta.get("deletionTimestamp"),
            meta.get("labels") or {}, annotations,
        )  # fmt: skip
        key = (namespace, name)
        if self._essence.get(key) == essence:
            return False
        self._essence[key] = essence
        return True

    def poke(self, namespace: str, name: str) -> None:
        """A child changed (pods became ready, a rollout finished): tick at the next timer
        wake-up instead of waiting out the requeue time the engine asked for."""
        if self.schedule.get((namespace, name)) is not None:  # not one of ours being deleted
            self.schedule.sooner((namespace, name), time.monotonic())

    def forget(self, namespace: str, name: str) -> None:
        self._known.discard((namespace, name))
        self._essence.pop((namespace, name), None)
        self._deps.metrics.forget((namespace, name))
        self.schedule.forget((namespace, name))
        self._locks.pop(f"{namespace}/{name}", None)
        self._health.forget(f"{namespace}/{name}")

    def close(self) -> None:
        """At shutdown: running reconciles finish, none start."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def register(
    settings: OperatorSettings,
    deps: Deps,
    health: Health,
    leading: Callable[[], bool] = lambda: True,
) -> kopf.OperatorRegistry:
    """A registry with the operator's handlers, ready for ``kopf.run(registry=...)``.
    ``leading`` is the elector's answer: a tick starts only while it is True."""
    registry = kopf.OperatorRegistry()
    ticker = Ticker(deps, health, leading)
    _register_operator(registry, ticker, health)
    _register_reconcile(registry, ticker, settings, health)
    _register_child_watches(registry, ticker)
    return registry


def _register_operator(registry: kopf.OperatorRegistry, ticker: Ticker, health: Health) -> None:
    """kopf's own settings, login, the schedule's task and the event loop's heartbeat."""

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # kopf's own Events only for problems: ours already tell the rollout's story.
        settings.posting.level = logging.WARNING
        # Dead watch streams made kopf operators zombies (kopf #1276): time them out.
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.watching.connect_timeout = 30
        settings.execution.max_workers = 8

    tasks: list[asyncio.Task[None]] = []

    @kopf.on.startup(registry=registry)
    async def heartbeat(**_: Any) -> None:
        async def beat() -> None:  # liveness: the event loop still runs
            while True:
                health.loop_beat()
                await asyncio.sleep(1.0)

        tasks.append(asyncio.create_task(beat()))

    @kopf.on.startup(registry=registry, id="schedule")
    async def start_schedule(**_: Any) -> None:
        tasks.append(asyncio.create_task(ticker.schedule.run(ticker.scheduled)))

    @kopf.on.cleanup(registry=registry)
    def stop(**_: Any) -> None:
        for task in tasks:
            task.cancel()
        ticker.close()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_client(**kwargs)


def _register_reconcile(
    registry: kopf.OperatorRegistry, ticker: Ticker, settings: OperatorSettings, health: Health
) -> None:
    """One watch handler does what create, update, resume and delete handlers would: an
    object seen for the first time (kopf's first list at start, or created since) or whose
    spec, labels or annotations changed ticks now; a deleted one ticks no more.

    kopf's change handlers cost each watch event a diff of the object against the last
    configuration kopf stored in an annotation (and an annotation patch after each change).
    With 30 canaries writing status every 10 s, kopf's handling of events (most of them our
    own status writes) was 17% of the operator's CPU samples; 8% with this handler
    (docs/benchmarks.md, B9). The generation says whether the spec changed."""
    resource = {"group": GROUP, "version": VERSION, "plural": PLURAL, "registry": registry}

    @kopf.on.event(**resource, id="watch-modeldeployments")  # type: ignore[arg-type]
    async def on_event(namespace: str, name: str, body: Any, type: str, **_: Any) -> None:
        if type == "DELETED":  # no finalizer: plan no more ticks
            ticker.forget(namespace, name)
            return
        # Liveness: each status write must come back on the watch, or the stream is dead.
        version = str(body.get("metadata", {}).get("resourceVersion", ""))
        health.watched(f"{namespace}/{name}", version)
        if ticker.changed(namespace, name, body):
            ticker.saw(body)
            await ticker.tick(namespace, name)


def _register_child_watches(registry: kopf.OperatorRegistry, ticker: Ticker) -> None:
    """Our Deployments and Services changing wake their owner's next tick early."""

    async def on_child_event(**kwargs: Any) -> None:
        owner, namespace = kwargs["labels"].get(LABEL_MD), kwargs["namespace"]
        if owner and namespace:
            ticker.saw(kwargs["body"])
            ticker.poke(namespace, owner)

    for group_version, plural in (("apps/v1", "deployments"), ("v1", "services")):
        watch = kopf.on.event(
            group_version, plural, labels=OURS, registry=registry, id=f"watch-{plural}"
        )
        watch(on_child_event)


__all__ = ["Ticker", "register"]
