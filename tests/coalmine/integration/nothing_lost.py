"""What "nothing lost" means after a fault (anchors-reliability.md §6), as checks on a Sandbox:

(a) stable served every request it got (no failure, no dropped connection);
(b) no traffic beyond the last passed step: the weight never rose while the fault lasted;
(c) status equals an uninterrupted run's (the test compares the fields that matter);
(d) exactly one canary and one stable Deployment, one Service: no duplicate, no orphan;
(e) every decision has a reason and an Event: each history outcome has exactly one Event.

Negative checks poll over a stated window (``holds_for``) instead of sleeping once.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from e2e.devcluster.sandbox import Sandbox
from e2e.devcluster.traffic import Snapshot

DECISIONS = ("Promoted", "RolledBack")  # outcomes the operator announces with an Event


def holds_for(predicate: Callable[[], bool], seconds: float, what: str, every: float = 0.2) -> int:
    """Check ``predicate`` every ``every`` s for ``seconds``; fail at its first False.
    Returns how many times it was checked (so a caller can see the window was really polled)."""
    deadline = time.monotonic() + seconds
    checks = 0
    while True:
        assert predicate(), f"{what} stopped holding after {checks} checks"
        checks += 1
        if time.monotonic() >= deadline:
            return checks
        time.sleep(every)


def stable_served_everything(h: Sandbox) -> None:
    """(a): the clients' view of stable for the whole test."""
    assert h.traffic is not None and h.traffic.sent["stable"] > 0
    assert h.traffic.failed["stable"] == 0, dict(h.traffic.failed)
    assert h.traffic.dropped["stable"] == 0, dict(h.traffic.dropped)


def weight_never_rose(snapshots: list[Snapshot]) -> None:
    """(b): over these snapshots (a fault's span) the canary weight never went up."""
    weights = [s.weight for s in snapshots if s.weight is not None]
    assert all(b <= a for a, b in itertools.pairwise(weights)), weights


def no_duplicate_or_orphan_children(h: Sandbox) -> None:
    """(d): the children are exactly the ones the object owns, each owned by it."""
    names = sorted(d["metadata"]["name"] for d in h.deployments())
    assert names == [f"{h.name}-canary", f"{h.name}-stable"], names
    uid = h.md()["metadata"]["uid"]
    for child in [*h.deployments(), *h.services()]:
        owners = [o["uid"] for o in child["metadata"].get("ownerReferences", [])]
        assert owners == [uid], (child["metadata"]["name"], owners)


def decisions_have_one_event_each(h: Sandbox, status: dict[str, Any]) -> None:
    """(e): one Event per Promoted/RolledBack outcome in history (none doubled by a retry),
    and a reason on every condition."""
    for outcome in DECISIONS:
        decided = sum(1 for e in status.get("history", []) if e["outcome"] == outcome)
        # The Events follow the status write: give the last one a moment to land.
        deadline = time.monotonic() + 20
        while (posted := _posted(h, outcome)) < decided and time.monotonic() < deadline:
            time.sleep(0.5)
        assert posted == decided, (outcome, posted, decided)
    assert all(c.get("reason") for c in status.get("conditions", [])), status["conditions"]


def _posted(h: Sandbox, reason: str) -> int:
    return sum(e.get("count") or 1 for e in h.events() if e["reason"] == reason)


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})
