"""What the dashboard saw of each ModelDeployment while it ran (pure, bounded, in memory).

The status holds only the current step's analysis; the page draws the weight and the
operator's measured values over time. So every poll of the list is recorded here: a weight
point when the weight changes, a check point per new ``analysis.measuredAt``, and the last
live rollout (which revisions, since when) so the Prometheus charts can still be drawn after
the canary is gone from the status.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from coalmine.api import Phase, RevisionRef
from coalmine.cli.render import read_status

LIVE = frozenset({Phase.PROGRESSING, Phase.PAUSED, Phase.ROLLING_BACK})
"""Phases in which a canary runs (a rolled-back canary may stay named in the status)."""
POINTS_KEPT = 720
"""Per series: an hour at one point per five seconds. A long-running dashboard forgets the
oldest points rather than grow."""


@dataclass(frozen=True)
class Rollout:
    """The last canary seen running: the Prometheus charts' subject and time range."""

    canary: RevisionRef
    stable: RevisionRef | None
    started_at: datetime | None
    last_seen: datetime


@dataclass
class Remembered:
    weights: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=POINTS_KEPT))
    checks: dict[str, deque[dict[str, Any]]] = field(default_factory=dict)
    measured_at: datetime | None = None
    rollout: Rollout | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "weights": list(self.weights),
            "checks": {name: list(points) for name, points in self.checks.items()},
        }


class Memory:
    """Remembered rollouts by (namespace, name, uid): a ModelDeployment deleted and created
    again under the same name starts afresh."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str, str], Remembered] = {}

    def record(self, obj: dict[str, Any], now: datetime) -> None:
        status = read_status(obj)
        remembered = self._by_key.setdefault(_key(obj), Remembered())
        stamp = _iso(now)
        last = remembered.weights[-1] if remembered.weights else None
        if last is None or last["weight"] != status.weight:
            remembered.weights.append({"t": stamp, "weight": status.weight, "source": "status"})
        if status.canary is not None and status.phase in LIVE:
            remembered.rollout = Rollout(
                status.canary, status.stable, status.canary_started_at, now
            )
        analysis = status.analysis
        if analysis is not None and analysis.measured_at != remembered.measured_at:
            remembered.measured_at = analysis.measured_at
            for check in analysis.checks:
                points = remembered.checks.setdefault(check.name, deque(maxlen=POINTS_KEPT))
                points.append(
                    {
                        "t": _iso(analysis.measured_at),
                        "value": check.value,
                        "stableValue": check.stable_value,
                        "verdict": check.verdict,
                    }
                )

    def recall(self, obj: dict[str, Any]) -> Remembered:
        return self._by_key.get(_key(obj)) or Remembered()

    def forget_others(self, present: list[dict[str, Any]]) -> None:
        """Drop what belongs to objects no longer listed (deleted)."""
        keep = {_key(obj) for obj in present}
        for key in list(self._by_key):
            if key not in keep:
                del self._by_key[key]


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", ""))


def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")
