"""Liveness that means it: ``/healthz`` fails (HTTP 500, with the reasons) when the operator
has stopped doing its work, so the kubelet restarts it.

kopf's own liveness endpoint answers 200 with whatever its probes return, and exists only once
kopf runs; a standby never runs kopf. So the operator serves its own endpoint, from a thread of
its own: it still answers (500) when the event loop itself is stuck.

What counts as dead, for a leader:

- the event loop has not beaten for ``stall_after`` seconds;
- an object's tick started more than ``stall_after`` seconds ago and has not ended (a
  reconcile hanging on a call that never returns, a pool with every thread stuck), or a tick
  fell due that long ago and has not started (the schedule's task is dead);
- the watch is silent: the operator wrote an object's status ``watch_grace`` seconds ago and
  no watch event of that object at or after the written version has arrived (kopf's watch
  stream died without an error: new objects would never get a timer).

For a standby: the elector has not finished an attempt to take the Lease for ``stall_after``
seconds. Nothing here reads the API server: the checks are about this process.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from coalmine.k8s import ObjectRef

log = logging.getLogger(__name__)


def _newer_or_same(seen: str, wrote: str) -> bool:
    """resourceVersions are opaque, but etcd's are integers; anything else compares equal."""
    if seen.isdigit() and wrote.isdigit():
        return int(seen) >= int(wrote)
    return seen == wrote


@dataclass
class Health:
    """What the process did and when, by a monotonic clock; :meth:`problems` judges it."""

    stall_after: float
    watch_grace: float
    clock: Callable[[], float] = time.monotonic
    standby_alive_since: Callable[[], float] | None = None
    """When the elector last finished an attempt (set while this process is a standby)."""
    leading: Callable[[], bool] = lambda: True
    overdue_since: Callable[[], float | None] = lambda: None
    """When the earliest planned tick fell due, if it has (the schedule's ``next_at``)."""
    _loop_beat: float | None = None
    _last_reconcile: float | None = None
    _running: dict[str, float] = field(default_factory=dict)
    _unseen: dict[str, tuple[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def loop_beat(self) -> None:
        self._loop_beat = self.clock()

    def tick_done(self, key: str) -> None:
        """An object's tick ended, whatever its outcome."""
        with self._lock:
            self._running.pop(key, None)

    def reconciled(self) -> None:
        """A reconcile (of any object) finished, whatever its outcome."""
        self._last_reconcile = self.clock()

    def seconds_since_reconcile(self) -> float | None:
        """None before the first reconcile (and on a standby, which never reconciles)."""
        last = self._last_reconcile
        return None if last is None else round(self.clock() - last, 1)

    def tick_started(self, key: str) -> None:
        """An object's tick started: it must end within the stall limit. Ticks are planned
        per object (a steady one every few minutes), so liveness watches the ticks that run
        and the ones that fall due, not how often each object ticks."""
        with self._lock:
            self._running.setdefault(key, self.clock())

    def forget(self, key: str) -> None:
        with self._lock:
            self._running.pop(key, None)
            self._unseen.pop(key, None)

    def wrote(self, key: str, version: str) -> None:
        """The operator wrote ``key`` at ``version``: the watch should show it."""
        if version:
            with self._lock:
                self._unseen.setdefault(key, (version, self.clock()))
                since = self._unseen[key][1]
                self._unseen[key] = (version, since)

    def wrote_status(self, ref: ObjectRef, version: str) -> None:
        self.wrote(f"{ref.namespace}/{ref.name}", version)

    def watched(self, key: str, version: str) -> None:
        """A watch event of ``key`` arrived."""
        with self._lock:
            pending = self._unseen.get(key)
            if pending is not None and _newer_or_same(version, pending[0]):
                self._unseen.pop(key)

    def problems(self) -> list[str]:
        """Why this process is not live; empty when it is."""
        now = self.clock()
        if not self.leading():
            return self._standby_problems(now)
        found = []
        if self._loop_beat is None or now - self._loop_beat > self.stall_after:
            found.append("the event loop has not run for longer than the stall limit")
        with self._lock:
            running, unseen = dict(self._running), dict(self._unseen)
        for key, started in sorted(running.items()):
            if now - started > self.stall_after:
                found.append(f"{key}: tick running for {now - started:.0f}s, not completed")
        due = self.overdue_since()
        if due is not None and now - due > self.stall_after:
            found.append(f"ticks not starting: one fell due {now - due:.0f}s ago")
        for key, (version, since) in sorted(unseen.items()):
            if now - since > self.watch_grace:
                found.append(
                    f"{key}: watch silent {now - since:.0f}s after writing version {version}"
                )
        return found

    def _standby_problems(self, now: float) -> list[str]:
        if self.standby_alive_since is None:
            return []
        last = self.standby_alive_since()
        if now - last > self.stall_after:
            return [f"standby: no attempt to take the Lease for {now - last:.0f}s"]
        return []

    def report(self) -> tuple[int, dict[str, Any]]:
        found = self.problems()
        role = "leader" if self.leading() else "standby"
        body = {
            "live": not found,
            "role": role,
            "problems": found,
            # What kopf's probe answered before: a tick held up (a webhook, a hung query)
            # shows here as a growing number before it is a problem.
            "seconds_since_tick": self.seconds_since_reconcile(),
        }
        return (500 if found else 200), body


def serve(health: Health, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """``GET /healthz`` from a daemon thread; the server is returned so tests can close it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/healthz":
                self.send_error(404)
                return
            code, body = health.report()
            payload = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return  # one line per probe every few seconds is noise

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="healthz", daemon=True).start()
    return server


__all__ = ["Health", "serve"]
