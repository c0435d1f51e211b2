"""kopf registrations only: every event and every timer tick calls the same reconcile.

Registered into a fresh registry by :func:`register` (called by ``coalmine operator``) rather
than at import time, so the timer's period comes from the settings and importing this module
has no side effects.

The only in-memory state is a per-object lock (two handlers of one object never reconcile at
once) and the time the next tick is due; a restart loses nothing but an early tick.

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
from coalmine.k8s import ApiError
from coalmine.manifests import LABEL_MD, MANAGED_BY
from coalmine.reconcile import Deps, reconcile
from coalmine.settings import OperatorSettings

log = logging.getLogger(__name__)
OURS = dict(MANAGED_BY)
_TIMER_ID = "register.<locals>.on_timer"
_DELETE_ID = "register.<locals>.on_delete"


class Ticker:
    """Serialises reconciles per object and skips timer ticks that come before they are due."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._due: dict[str, float] = {}
        self._pool = ThreadPoolExecutor(
            max_workers=deps.settings.reconcile_workers, thread_name_prefix="reconcile"
        )
        self.last_success = time.monotonic()

    async def tick(self, namespace: str, name: str, *, force: bool) -> None:
        key = f"{namespace}/{name}"
        now = time.monotonic()
        due = now if force else self._due.get(key, now)
        if now < due:
            return
        async with self._locks[key]:
            try:
                loop = asyncio.get_running_loop()
                requeue = await loop.run_in_executor(self._pool, self._timed, due, namespace, name)
            except ApiError as exc:
                # The next tick retries from a fresh read; kopf's own retry back-off (60 s by
                # default) would stall an analysis that runs every few seconds.
                log.warning("%s/%s: API error, retrying next tick: %s", namespace, name, exc)
                self._deps.metrics.error("api")
                requeue = self._deps.settings.tick_seconds
            self.last_success = time.monotonic()
        self._due[key] = time.monotonic() + (requeue or self._deps.settings.tick_seconds)

    def _timed(self, due: float, namespace: str, name: str) -> float | None:
        """One reconcile in the pool, counted: how late it started (queued for a worker or the
        object's lock, or the timer's granularity), how long it ran, whether it blew up."""
        metrics = self._deps.metrics
        started = time.monotonic()
        metrics.tick_lag.observe(max(0.0, started - due))
        metrics.seen((namespace, name))
        try:
            return reconcile(self._deps, namespace, name)
        except ApiError:
            raise
        except Exception:
            metrics.error("unexpected")
            raise
        finally:
            metrics.ticks.inc()
            metrics.tick_duration.observe(time.monotonic() - started)

    def poke(self, namespace: str, name: str) -> None:
        """A child changed (pods became ready, a rollout finished): tick at the next timer
        wake-up instead of waiting out the requeue time the engine asked for."""
        self._due[f"{namespace}/{name}"] = time.monotonic()

    def forget(self, namespace: str, name: str) -> None:
        self._deps.metrics.forget((namespace, name))
        self._due.pop(f"{namespace}/{name}", None)
        self._locks.pop(f"{namespace}/{name}", None)

    def close(self) -> None:
        """At shutdown: running reconciles finish, none start."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def register(settings: OperatorSettings, deps: Deps) -> kopf.OperatorRegistry:
    """A registry with the operator's handlers, ready for ``kopf.run(registry=...)``."""
    registry = kopf.OperatorRegistry()
    ticker = Ticker(deps)
    _register_operator(registry, ticker)
    _register_reconcile(registry, ticker, settings)
    _register_child_watches(registry, ticker)
    return registry


def _register_operator(registry: kopf.OperatorRegistry, ticker: Ticker) -> None:
    """kopf's own settings, login and the liveness probe."""

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # kopf's own Events only for problems: ours already tell the rollout's story.
        settings.posting.level = logging.WARNING
        settings.persistence.finalizer = "coalmine.dev/finalizer"
        # Dead watch streams made kopf operators zombies (kopf #1276): time them out.
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.watching.connect_timeout = 30
        settings.execution.max_workers = 8

    @kopf.on.cleanup(registry=registry)
    def stop(**_: Any) -> None:
        ticker.close()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_client(**kwargs)

    @kopf.on.probe(id="seconds_since_tick", registry=registry)
    def liveness(**_: Any) -> float:
        return round(time.monotonic() - ticker.last_success, 1)


def _register_reconcile(
    registry: kopf.OperatorRegistry, ticker: Ticker, settings: OperatorSettings
) -> None:
    """Create, update, resume and the timer all run the same reconcile."""
    resource = {"group": GROUP, "version": VERSION, "plural": PLURAL, "registry": registry}

    async def on_change(namespace: str, name: str, **_: Any) -> None:
        await ticker.tick(namespace, name, force=True)

    for decorator in (kopf.on.create, kopf.on.update, kopf.on.resume):
        _apply(decorator, on_change, resource)

    # Ids pinned to what kopf derived while these lived in ``register``: kopf keys a handler's
    # progress (kept in annotations across restarts) by its id.
    @kopf.timer(**resource, id=_TIMER_ID, interval=settings.tick_seconds, idle=None)  # type: ignore[arg-type]
    async def on_timer(namespace: str, name: str, **_: Any) -> None:
        await ticker.tick(namespace, name, force=False)

    @kopf.on.delete(**resource, id=_DELETE_ID, optional=True)  # type: ignore[arg-type]
    async def on_delete(namespace: str, name: str, **_: Any) -> None:
        # Nothing to clean up: ownerReferences let the garbage collector remove the children.
        ticker.forget(namespace, name)


def _register_child_watches(registry: kopf.OperatorRegistry, ticker: Ticker) -> None:
    """Our Deployments and Services changing wake their owner's next tick early."""

    async def on_child_event(**kwargs: Any) -> None:
        owner, namespace = kwargs["labels"].get(LABEL_MD), kwargs["namespace"]
        if owner and namespace:
            ticker.poke(namespace, owner)

    for group_version, plural in (("apps/v1", "deployments"), ("v1", "services")):
        watch = kopf.on.event(
            group_version, plural, labels=OURS, registry=registry, id=f"watch-{plural}"
        )
        watch(on_child_event)


def _apply(decorator: Callable[..., Any], fn: Callable[..., Any], resource: dict[str, Any]) -> None:
    decorator(**resource, id=f"reconcile-{decorator.__name__}")(fn)


__all__ = ["Ticker", "register"]
