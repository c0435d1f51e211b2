"""Leader election on a ``coordination.k8s.io/v1`` Lease: one operator acts, the others wait.

The rules are client-go's ``leaderelection`` (what Argo Rollouts and Flagger run on):

- A candidate takes the Lease only when it is free (no holder) or expired: its record (holder
  and resourceVersion) has not changed for ``leaseDurationSeconds`` *by the candidate's own
  clock*, from when it first saw that record. No clocks are compared across machines.
- Every write is a create, or a replace (PUT) carrying the resourceVersion just read: of two
  candidates writing the same record, the API server lets exactly one through (409 for the
  other), so two cannot both win.
- The leader renews every ``retryPeriod``. If it has not renewed for ``renewDeadline``
  (shorter than the lease duration) it stops acting at once: :meth:`Elector.is_leader`
  turns False on its own clock, and the operator's client refuses writes from then on
  (:class:`LeaderOnly`); then the process exits, to come back as a standby.
- On a clean shutdown the leader releases the Lease (no holder), so a standby takes over
  within one retry period instead of a lease duration.

:func:`next_move` is the whole decision, pure, for unit tests; :class:`Elector` does the
I/O. The Lease lives in the operator's own namespace, where tenants have no rights.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from coalmine.k8s import ApiError, ConflictError, KubeError, Manifest, ObjectRef
from coalmine.k8s.protocol import KubeApi

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timing:
    """client-go's defaults for controllers."""

    lease_duration: float = 15.0
    """How long a standby waits, from when it saw the record last change, before taking it."""
    renew_deadline: float = 10.0
    """How long the leader keeps acting without a successful renewal (< lease_duration)."""
    retry_period: float = 2.0
    """How often the leader renews and a standby looks."""

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("need 0 < retryPeriod < renewDeadline < leaseDuration")


@dataclass(frozen=True)
class LeaseRecord:
    """The parts of a Lease the election reads."""

    holder: str
    """``spec.holderIdentity``; empty when released."""
    duration: float
    version: str
    """``metadata.resourceVersion``: the precondition of the next write."""
    transitions: int
    acquired: str | None

    @classmethod
    def of(cls, body: Manifest) -> LeaseRecord:
        spec = body.get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or "",
            duration=float(spec.get("leaseDurationSeconds") or 0),
            version=str(body["metadata"].get("resourceVersion", "")),
            transitions=int(spec.get("leaseTransitions") or 0),
            acquired=spec.get("acquireTime"),
        )


class Move(StrEnum):
    CREATE = "create"
    """No Lease yet: create it, holding it."""
    TAKE = "take"
    """Free or expired: write ourselves in (a new transition)."""
    RENEW = "renew"
    """Ours: write a new renewTime."""
    WAIT = "wait"
    """Someone else's and still valid."""


def next_move(record: LeaseRecord | None, identity: str, unchanged_for: float) -> Move:
    """What a candidate does with the Lease it just read; ``unchanged_for`` is how long, by
    its own clock, it has seen this same record (holder and resourceVersion)."""
    if record is None:
        return Move.CREATE
    if record.holder == identity:
        return Move.RENEW
    if not record.holder or unchanged_for >= record.duration:
        return Move.TAKE
    return Move.WAIT


class LeaseApi(Protocol):
    def get(self, ref: ObjectRef) -> Manifest | None: ...
    def create(self, manifest: Manifest) -> Manifest: ...
    def replace(self, manifest: Manifest) -> Manifest: ...


def _micro_time(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Elector:
    """One candidate. :meth:`acquire` blocks until it leads; :meth:`keep_leading` renews in a
    thread and calls ``on_lost`` once leadership is gone."""

    def __init__(
        self,
        api: LeaseApi,
        lease: ObjectRef,
        identity: str,
        timing: Timing = Timing(),
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._api, self.lease, self.identity, self.timing = api, lease, identity, timing
        self._clock, self._wall = clock, wall
        self._leading_until = float("-inf")
        self._seen: tuple[str, str] | None = None
        self._seen_since = clock()
        self._stop = threading.Event()
        self.last_attempt = clock()
        """When the last attempt (to take or renew) finished: liveness of a standby."""
        self.transitions = 0

    def seconds_of_last_attempt(self) -> float:
        return self.last_attempt

    def is_leader(self) -> bool:
        """True only while the last renewal is younger than the renew deadline."""
        return self._clock() < self._leading_until

    def try_once(self) -> bool:
        """Read the Lease and take, renew or wait; whether this candidate leads after it."""
        started = self._clock()
        try:
            return self._attempt(started)
        finally:
            self.last_attempt = self._clock()

    def _attempt(self, started: float) -> bool:
        try:
            body = self._api.get(self.lease)
        except KubeError as exc:
            log.warning("leader election: cannot read Lease %s: %s", self.lease.name, exc)
            return self.is_leader()
        record = LeaseRecord.of(body) if body is not None else None
        move = next_move(record, self.identity, self._unchanged_for(record, started))
        if move == Move.WAIT:
            if self.is_leader():  # our record was replaced: someone else holds it now
                log.error("leader election: %s took the Lease", record and record.holder)
            self._leading_until = float("-inf")
            return False
        try:
            self._write(move, record)
        except (ConflictError, ApiError, KubeError) as exc:
            # 409: another candidate wrote first; anything else: try again next period.
            log.info("leader election: %s refused: %s", move, exc)
            return self.is_leader()
        if move != Move.RENEW:
            log.info("leader election: %s leads (Lease %s)", self.identity, self.lease.name)
        self._leading_until = started + self.timing.renew_deadline
        return True

    def _unchanged_for(self, record: LeaseRecord | None, now: float) -> float:
        key = (record.holder, record.version) if record is not None else None
        if key != self._seen:
            self._seen, self._seen_since = key, now
        return now - self._seen_since

    def _write(self, move: Move, record: LeaseRecord | None) -> None:
        now = _micro_time(self._wall())
        transitions = record.transitions if record is not None else 0
        acquired = record.acquired if record is not None and move == Move.RENEW else now
        if move == Move.TAKE:
            transitions += 1
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.timing.lease_duration),
            "acquireTime": acquired,
            "renewTime": now,
            "leaseTransitions": transitions,
        }
        manifest = self._manifest(spec, record.version if record is not None else None)
        if move == Move.CREATE:
            self._api.create(manifest)
        else:
            self._api.replace(manifest)
        self.transitions = transitions

    def _manifest(self, spec: dict[str, Any], version: str | None) -> Manifest:
        metadata: dict[str, Any] = {"name": self.lease.name, "namespace": self.lease.namespace}
        if version is not None:
            metadata["resourceVersion"] = version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    def acquire(self) -> bool:
        """Block until this candidate leads (True) or :meth:`stop` is called (False)."""
        while not self._stop.is_set():
            if self.try_once():
                return True
            self._stop.wait(self.timing.retry_period)
        return False

    def keep_leading(self, on_lost: Callable[[], None]) -> threading.Thread:
        """Renew every retry period in a daemon thread; ``on_lost`` once renewal has failed
        past the renew deadline or someone else holds the Lease.

        A second thread watches the deadline itself, so a renewal stuck in a request that
        never returns (up to the client's timeout) cannot delay the step-down."""

        def renew() -> None:
            while not self._stop.wait(self.timing.retry_period):
                self.try_once()

        def watch_deadline() -> None:
            while not self._stop.wait(min(0.5, self.timing.retry_period)):
                if not self.is_leader():
                    log.error("leader election: leadership lost, stepping down")
                    on_lost()
                    return

        threading.Thread(target=renew, name="leader-election", daemon=True).start()
        watchdog = threading.Thread(target=watch_deadline, name="leader-deadline", daemon=True)
        watchdog.start()
        return watchdog

    def stop(self) -> None:
        self._stop.set()

    def release(self) -> None:
        """On a clean shutdown: stop acting, and free the Lease if it is still ours, so a
        standby takes over at its next look instead of after a lease duration."""
        was_leader = self.is_leader()
        self._stop.set()
        self._leading_until = float("-inf")
        if not was_leader:
            return
        try:
            body = self._api.get(self.lease)
            if body is None or LeaseRecord.of(body).holder != self.identity:
                return
            record = LeaseRecord.of(body)
            spec = {
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "renewTime": _micro_time(self._wall()),
                "leaseTransitions": record.transitions,
            }
            self._api.replace(self._manifest(spec, record.version))
            log.info("leader election: %s released the Lease", self.identity)
        except KubeError as exc:
            log.warning("leader election: could not release the Lease: %s", exc)


class NotLeaderError(ApiError):
    """A write attempted while this process does not lead: refused before it is sent."""

    def __init__(self) -> None:
        super().__init__(0, "not the leader: write refused")


class LeaderOnly:
    """The operator's client, fenced: reads pass, every write first checks that this process
    still leads. A tick already running when leadership is lost writes nothing more."""

    def __init__(
        self,
        kube: KubeApi,
        leading: Callable[[], bool],
        status_written: Callable[[ObjectRef, str], None] = lambda ref, version: None,
    ) -> None:
        self._kube, self._leading, self._status_written = kube, leading, status_written

    def _check(self) -> None:
        if not self._leading():
            raise NotLeaderError()

    def get(self, ref: ObjectRef) -> Manifest | None:
        return self._kube.get(ref)

    def saw(self, manifest: Manifest) -> None:
        """kopf saw this version first: a watch cache behind this client must not answer
        an older one (``coalmine.k8s.cached``)."""
        witness = getattr(self._kube, "saw", None)
        if witness is not None:
            witness(manifest)

    def list_pods(self, namespace: str, labels: dict[str, str]) -> list[Manifest]:
        return self._kube.list_pods(namespace, labels)

    def apply(self, manifest: Manifest, *, force: bool = True) -> Manifest:
        self._check()
        return self._kube.apply(manifest, force=force)

    def create(self, manifest: Manifest) -> Manifest:
        self._check()
        return self._kube.create(manifest)

    def merge_patch(self, ref: ObjectRef, patch: Manifest) -> Manifest:
        self._check()
        return self._kube.merge_patch(ref, patch)

    def apply_status(
        self, ref: ObjectRef, api_version: str, status: Manifest, *, resource_version: str
    ) -> str:
        self._check()
        written = self._kube.apply_status(
            ref, api_version, status, resource_version=resource_version
        )
        self._status_written(ref, written)  # liveness expects the watch to show it
        return written

    def scale(self, ref: ObjectRef, replicas: int) -> None:
        self._check()
        self._kube.scale(ref, replicas)

    def remove_annotations(self, ref: ObjectRef, keys: list[str]) -> None:
        if keys:
            self._check()
        self._kube.remove_annotations(ref, keys)

    def post_event(
        self,
        involved: Manifest,
        type_: Literal["Normal", "Warning"],
        reason: str,
        message: str,
    ) -> None:
        self._check()
        self._kube.post_event(involved, type_, reason, message)


_current: Callable[[], bool] = lambda: False  # noqa: E731


def install(leading: Callable[[], bool]) -> None:
    """Make ``leading`` what :func:`is_leader` answers (``coalmine operator`` does this)."""
    global _current
    _current = leading


def is_leader() -> bool:
    """Whether this process leads now: the hook for a leader gauge (False before the
    operator starts; True throughout with leader election switched off)."""
    return _current()


__all__ = [
    "Elector",
    "LeaderOnly",
    "LeaseRecord",
    "Move",
    "NotLeaderError",
    "Timing",
    "install",
    "is_leader",
    "next_move",
]
