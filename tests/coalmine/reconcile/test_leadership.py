"""The elector's decisions, and two electors racing on one Lease with resourceVersion
semantics (a fake LeaseApi that refuses a write carrying an old version, as the API server
does). Clocks are fake: every figure here is exact."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from coalmine.k8s import ConflictError, ObjectRef, UnreachableError
from coalmine.leadership import Elector, LeaderOnly, LeaseRecord, Move, NotLeaderError, Timing
from coalmine.leadership import next_move as move
from tests.coalmine.fakes import FakeKube

LEASE = ObjectRef("Lease", "coalmine-system", "coalmine-operator")


def _record(holder: str, duration: float = 15.0) -> LeaseRecord:
    return LeaseRecord(holder=holder, duration=duration, version="5", transitions=1, acquired=None)


@pytest.mark.parametrize(
    ("record", "seen_for", "expected"),
    [
        (None, 0.0, Move.CREATE),
        (_record("me"), 0.0, Move.RENEW),
        (_record("me"), 99.0, Move.RENEW),
        (_record(""), 0.0, Move.TAKE),  # released on shutdown: no need to wait
        (_record("other"), 14.9, Move.WAIT),
        (_record("other"), 15.0, Move.TAKE),  # unchanged for a lease duration: expired
        (_record("other", duration=30.0), 20.0, Move.WAIT),  # the Lease's duration counts
    ],
)
def test_next_move(record: LeaseRecord | None, seen_for: float, expected: Move) -> None:
    assert move(record, "me", seen_for) == expected


def test_timing_must_keep_the_renew_deadline_inside_the_lease() -> None:
    with pytest.raises(ValueError):
        Timing(lease_duration=10, renew_deadline=10, retry_period=2)


class FakeLeases:
    """Create refuses an existing name; replace refuses a stale resourceVersion."""

    def __init__(self) -> None:
        self.body: dict[str, Any] | None = None
        self.version = 0
        self.down = False

    def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        if self.down:
            raise UnreachableError("connection refused")
        return copy.deepcopy(self.body)

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        if self.body is not None:
            raise ConflictError(409, "already exists")
        return self._store(manifest)

    def replace(self, manifest: dict[str, Any]) -> dict[str, Any]:
        if self.down:
            raise UnreachableError("connection refused")
        assert self.body is not None
        if manifest["metadata"]["resourceVersion"] != self.body["metadata"]["resourceVersion"]:
            raise ConflictError(409, "the object has been modified")
        return self._store(manifest)

    def _store(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        self.body = copy.deepcopy(manifest)
        self.body["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.body)

    @property
    def holder(self) -> str:
        assert self.body is not None
        return str(self.body["spec"]["holderIdentity"])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pair() -> tuple[FakeLeases, Clock, Elector, Elector]:
    leases, clock = FakeLeases(), Clock()
    a = Elector(leases, LEASE, "a", clock=clock)
    b = Elector(leases, LEASE, "b", clock=clock)
    return leases, clock, a, b


def test_the_first_candidate_creates_and_leads_and_the_second_waits() -> None:
    leases, _, a, b = _pair()
    assert a.try_once() and a.is_leader()
    assert not b.try_once() and not b.is_leader()
    assert leases.holder == "a"
    assert leases.body is not None and leases.body["spec"]["leaseDurationSeconds"] == 15


def test_two_candidates_with_the_same_read_cannot_both_win() -> None:
    """b and c both read the released Lease before either writes: both try to take it, and
    the second write carries a version that is no longer current, so it is refused."""
    leases, clock, a, b = _pair()
    c = Elector(leases, LEASE, "c", clock=clock)
    a.try_once()
    a.release()
    same_read = leases.get(LEASE)
    leases.get = lambda ref: copy.deepcopy(same_read)  # type: ignore[method-assign]
    won = [b.try_once(), c.try_once()]
    assert won == [True, False]
    assert leases.holder == "b" and not c.is_leader()


def test_a_standby_takes_over_only_after_the_lease_duration_of_silence() -> None:
    leases, clock, a, b = _pair()
    a.try_once()
    for _ in range(5):  # a renews every 2 s: b keeps seeing a new record
        clock.now += 2
        a.try_once()
        assert not b.try_once()
    # a dies (SIGKILL): its record stops changing.
    died_at = clock.now
    taken_at = None
    while taken_at is None:
        clock.now += 2
        if b.try_once():
            taken_at = clock.now
    # b first saw a's last record at its first look after the death (2 s later), then waited
    # 15 s from then: within lease duration + one retry period of the last renewal.
    assert 15 <= taken_at - died_at <= 15 + 2 + 2
    assert leases.holder == "b"
    assert leases.body is not None and leases.body["spec"]["leaseTransitions"] == 1


def test_a_leader_that_cannot_renew_stops_leading_at_the_renew_deadline() -> None:
    leases, clock, a, _ = _pair()
    a.try_once()
    renewed_at = clock.now
    leases.down = True
    while a.is_leader():
        clock.now += 2
        a.try_once()
    assert clock.now - renewed_at == 10  # the renew deadline, before any standby may take it


def test_a_leader_whose_lease_was_taken_stops_at_its_next_look() -> None:
    leases, clock, a, _ = _pair()
    a.try_once()
    leases.body["spec"]["holderIdentity"] = "usurper"  # type: ignore[index]
    leases.version += 1
    leases.body["metadata"]["resourceVersion"] = str(leases.version)  # type: ignore[index]
    clock.now += 2
    assert not a.try_once() and not a.is_leader()


def test_release_frees_the_lease_for_a_standby_at_once() -> None:
    leases, clock, a, b = _pair()
    a.try_once()
    assert not b.try_once()
    a.release()
    assert not a.is_leader() and leases.holder == ""
    clock.now += 2
    assert b.try_once() and leases.holder == "b"


def test_a_fenced_client_refuses_every_write_once_leadership_is_gone() -> None:
    kube = FakeKube()
    leading = [True]
    fenced = LeaderOnly(kube, lambda: leading[0])
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "n"}}
    fenced.apply(service)
    leading[0] = False
    ref = ObjectRef.of(service)
    writes = [
        lambda: fenced.apply(service),
        lambda: fenced.create(service),
        lambda: fenced.merge_patch(ref, {"metadata": {"labels": {"a": "b"}}}),
        lambda: fenced.apply_status(ref, "v1", {}, resource_version="1"),
        lambda: fenced.scale(ref, 0),
        lambda: fenced.remove_annotations(ref, ["x"]),
        lambda: fenced.post_event({"name": "s", "namespace": "n"}, "Normal", "R", "m"),
    ]
    for write in writes:
        with pytest.raises(NotLeaderError):
            write()
    assert fenced.get(ref) is not None  # reads still pass
    assert kube.calls == [("apply", "Service", "s")]
    assert kube.events == []


def test_a_renewal_hanging_on_a_silent_api_server_does_not_delay_the_step_down() -> None:
    """Real threads and a real clock, short timing: the Lease's reads hang (a partition), yet
    ``on_lost`` fires within half a second of the renew deadline."""
    import threading
    import time

    leases = FakeLeases()
    elector = Elector(leases, LEASE, "a", Timing(3.0, 1.0, 0.2))
    assert elector.try_once()
    renewed = time.monotonic()
    hang = threading.Event()

    def silent(ref: ObjectRef) -> None:
        hang.wait(30)
        raise UnreachableError("timed out")

    leases.get = silent  # type: ignore[assignment, method-assign]
    lost = threading.Event()
    elector.keep_leading(on_lost=lost.set)
    try:
        assert lost.wait(5)
        stepped_down = time.monotonic() - renewed
        # At the renew deadline (1 s), and before any standby may take the Lease (3 s), with
        # room for a loaded machine's thread scheduling; the hung read would take 30 s.
        assert 1.0 <= stepped_down < 2.9, stepped_down
        assert not elector.is_leader()
    finally:
        hang.set()
        elector.stop()
