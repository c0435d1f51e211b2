"""The JSON the dashboard page shows, built from what the API server returns (pure).

Input: the ModelDeployment as a dict, its Events, what the dashboard remembers of it
(``memory``), the check series (``series``) and the time. Output: plain JSON-ready dicts.
Strings from the cluster (names, reasons, messages) pass through unchanged: escaping is
the page's job (it only ever sets ``textContent``), and the JSON is never HTML.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from coalmine.api import ModelDeploymentStatus, RevisionRef
from coalmine.api.canary import CanaryStrategy
from coalmine.api.checks import Check, CheckKind
from coalmine.api.spec import DEFAULT_STEPS
from coalmine.api.status import HistoryEntry, RollbackRecord
from coalmine.cli.render import read_status
from coalmine.cli.text import parse_time

EVENTS_SHOWN = 15
CHANGE_CAUSE = "kubernetes.io/change-cause"
"""The annotation kubectl users already write to say why a revision was applied."""
DECIDED = ("Promoted", "RolledBack", "Aborted")
_STEP_WEIGHT = re.compile(r"\bweight (\d+)%")


def iso(moment: datetime | None) -> str | None:
    """RFC 3339 to the second, as kubectl shows times (the operator stamps microseconds)."""
    if moment is None:
        return None
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def revision(ref: RevisionRef | None) -> dict[str, str] | None:
    return None if ref is None else {"version": ref.version, "revision": ref.revision}


def canary_strategy(obj: dict[str, Any]) -> CanaryStrategy | None:
    """The spec's canary settings, or None when they do not parse (a newer CRD than this
    plugin): the page then shows the status alone rather than failing."""
    canary = (obj.get("spec") or {}).get("canary") or {}
    try:
        return CanaryStrategy.model_validate({"steps": DEFAULT_STEPS, **canary})
    except ValidationError:
        return None


def checks_of(obj: dict[str, Any]) -> list[Check]:
    strategy = canary_strategy(obj)
    return list(strategy.analysis.checks) if strategy else []


def summary(obj: dict[str, Any]) -> dict[str, Any]:
    """One row of the list: where the rollout is and how the last one ended."""
    meta, status = obj.get("metadata") or {}, read_status(obj)
    steps = step_rows(obj, status)
    current = next((s for s in steps if s["state"] == "current"), None)
    return {
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "phase": status.phase.value,
        "stable": revision(status.stable),
        "canary": revision(status.canary),
        "weight": status.weight,
        "appliedWeight": status.applied_weight,
        "step": f"{current['index'] + 1}/{len(steps)}" if current else None,
        "lastDecision": last_decision(status),
        "message": status.message,
    }


def step_rows(obj: dict[str, Any], status: ModelDeploymentStatus) -> list[dict[str, Any]]:
    """Each step with its state: ``passed``, ``current`` or ``pending`` while a canary runs;
    after a rollout, ``passed`` when it was promoted, else ``pending``."""
    strategy = canary_strategy(obj)
    steps = strategy.steps if strategy else []
    promoted = status.canary is None and _last_outcome(status.history) == "Promoted"

    def state(index: int) -> str:
        if status.canary is None or status.current_step is None:
            return "passed" if promoted else "pending"
        if index < status.current_step:
            return "passed"
        return "current" if index == status.current_step else "pending"

    return [
        {
            "index": i,
            "weight": step.weight,
            "pauseSeconds": step.pause.total_seconds(),
            "state": state(i),
        }
        for i, step in enumerate(steps)
    ]


def _last_outcome(history: list[HistoryEntry]) -> str | None:
    return history[-1].outcome if history else None


def last_decision(status: ModelDeploymentStatus) -> dict[str, Any] | None:
    """The last promotion or rollback: the rollback record when it is the newer (it carries
    the check and numbers that decided), else the newest Promoted, RolledBack or Aborted
    entry of the history."""
    ended = [h for h in status.history if h.outcome in DECIDED]
    newest = ended[-1] if ended else None
    record = status.rollback
    if record is not None and (newest is None or _rollback_is_newer(record, newest)):
        return _rollback_decision(record)
    if newest is None:
        return None
    return {
        "kind": "promotion" if newest.outcome == "Promoted" else "rollback",
        "outcome": newest.outcome,
        "version": newest.version,
        "revision": newest.revision,
        "reason": newest.reason,
        "at": iso(newest.at),
    }


def _rollback_is_newer(record: RollbackRecord, entry: HistoryEntry) -> bool:
    # The history entry of this very rollback is written when it completes; the record is
    # the fuller account of the same decision.
    return record.revision == entry.revision or record.started_at >= entry.at


def _rollback_decision(record: RollbackRecord) -> dict[str, Any]:
    return {
        "kind": "rollback",
        "outcome": record.outcome,
        "version": record.version,
        "revision": record.revision,
        "reason": record.reason,
        "at": iso(record.completed_at or record.started_at),
        "stage": record.stage,
        "check": record.check,
        "value": record.value,
        "stableValue": record.stable_value,
        "threshold": record.threshold,
        "samples": record.samples,
        "feature": record.feature,
        "startedAt": iso(record.started_at),
        "trafficOnStableAt": iso(record.traffic_on_stable_at),
        "completedAt": iso(record.completed_at),
    }


def limit(check: Check) -> dict[str, Any] | None:
    """The check's absolute bound as a line on its chart (``<=`` or ``>=`` a number), or
    None when it only compares with stable (stable's own line is then the reference)."""
    kind = check.kind
    bound: tuple[str, float | None] = ("<=", None)
    if kind is CheckKind.ERROR_RATE and check.error_rate is not None:
        bound = ("<=", check.error_rate.max)
    elif kind is CheckKind.LATENCY and check.latency is not None:
        bound = ("<=", check.latency.max_seconds)
    elif kind is CheckKind.SATURATION and check.saturation is not None:
        bound = ("<=", check.saturation.max)
    elif kind is CheckKind.QUALITY and check.quality is not None:
        quality = check.quality
        bound = (">=", quality.min) if quality.metric == "accuracy" else ("<=", quality.max)
    elif kind is CheckKind.DRIFT and check.drift is not None:
        bound = ("<=", check.drift.max)
    elif kind is CheckKind.PROMQL and check.promql is not None:
        promql = check.promql
        bound = ("<=", promql.max) if promql.max is not None else (">=", promql.min)
    op, value = bound
    return None if value is None else {"op": op, "value": value}


def check_rows(status: ModelDeploymentStatus, checks: list[Check]) -> list[dict[str, Any]]:
    """The operator's last measurement of each check, with the spec's bound beside it."""
    bounds = {c.name: limit(c) for c in checks}
    if status.analysis is None:
        return []
    return [
        {
            "name": c.name,
            "kind": c.kind,
            "verdict": c.verdict,
            "value": c.value,
            "stableValue": c.stable_value,
            "threshold": c.threshold,
            "limit": bounds.get(c.name),
            "samples": c.samples,
            "reason": c.reason,
            "dryRun": c.dry_run,
            "consecutiveFailures": c.consecutive_failures,
        }
        for c in status.analysis.checks
    ]


def event_rows(events: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """The newest Events, oldest first; None when they could not be listed."""
    if events is None:
        return None
    rows = [
        {
            "at": iso(event_time(e)),
            "type": e.get("type", ""),
            "reason": e.get("reason", ""),
            "message": e.get("message", ""),
            "count": e.get("count") or 1,
        }
        for e in events
    ]
    rows.sort(key=lambda r: r["at"] or "")
    return rows[-EVENTS_SHOWN:]


def event_time(event: dict[str, Any]) -> datetime | None:
    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        moment = parse_time(event.get(key))
        if moment is not None:
            return moment
    return parse_time((event.get("metadata") or {}).get("creationTimestamp"))


def weights_from_events(events: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Weight points the operator announced (``StepAdvanced: step 2: weight 50%``), so the
    chart has the steps taken before this dashboard started."""
    points = []
    for event in events or []:
        found = _STEP_WEIGHT.search(event.get("message") or "")
        moment = event_time(event)
        if event.get("reason") == "StepAdvanced" and found and moment is not None:
            points.append({"t": iso(moment), "weight": int(found.group(1)), "source": "event"})
    return points


def detail(
    obj: dict[str, Any],
    events: list[dict[str, Any]] | None,
    remembered: dict[str, Any],
    series: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """Everything the page shows for one ModelDeployment."""
    meta, status = obj.get("metadata") or {}, read_status(obj)
    observed_weights = remembered.get("weights", [])
    weights = sorted([*weights_from_events(events), *observed_weights], key=lambda p: str(p["t"]))
    analysis = status.analysis
    return {
        **summary(obj),
        "now": iso(now),
        "changeCause": (meta.get("annotations") or {}).get(CHANGE_CAUSE),
        "generation": meta.get("generation"),
        "observedGeneration": status.observed_generation,
        "pausedBy": status.paused_by,
        "canaryStartedAt": iso(status.canary_started_at),
        "stepStartedAt": iso(status.step_started_at),
        "steps": step_rows(obj, status),
        "analysis": None
        if analysis is None
        else {
            "verdict": analysis.verdict,
            "measuredAt": iso(analysis.measured_at),
            "step": analysis.step,
            "weight": analysis.weight,
            "checks": check_rows(status, checks_of(obj)),
        },
        "conditions": [
            {
                "type": c.type,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "at": iso(c.last_transition_time),
            }
            for c in status.conditions
        ],
        "decision": last_decision(status),
        "history": [
            {
                "revision": h.revision,
                "version": h.version,
                "outcome": h.outcome,
                "reason": h.reason,
                "at": iso(h.at),
            }
            for h in reversed(status.history)
        ],
        "events": event_rows(events),
        "weightSeries": weights,
        "observedChecks": remembered.get("checks", {}),
        "checkSeries": series,
    }
