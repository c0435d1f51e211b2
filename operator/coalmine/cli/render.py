"""Pure views of a ModelDeployment: the ``status`` page and the ``history`` table.

Input is what the API server returns (the object as a dict, its Events as dicts) plus the
current time; output is text. No I/O here, so every view is tested with fixed inputs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from coalmine.api import (
    AnalysisStatus,
    CheckStatus,
    Condition,
    ModelDeploymentStatus,
    Phase,
    RevisionRef,
    RollbackRecord,
)
from coalmine.api.spec import DEFAULT_STEPS
from coalmine.cli.text import MISSING, age, number, parse_time, table
from coalmine_serving.contract import redact_uri

EVENTS_SHOWN = 10
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def read_status(obj: dict[str, Any]) -> ModelDeploymentStatus:
    """The typed status; an object the operator has not seen yet reads as Pending."""
    return ModelDeploymentStatus.model_validate(obj.get("status") or {})


def render_status(obj: dict[str, Any], events: list[dict[str, Any]] | None, now: datetime) -> str:
    """The whole ``kubectl coalmine status`` page. ``events`` None means they could not be
    read (for example no permission); the page says so instead of failing."""
    status = read_status(obj)
    sections = [
        _overview(obj, status, now),
        _analysis(status.analysis, now),
        _conditions(status.conditions, now),
        _rollback(status.rollback, now),
        _events(events, now),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def _overview(obj: dict[str, Any], status: ModelDeploymentStatus, now: datetime) -> str:
    meta, spec = obj.get("metadata", {}), obj.get("spec", {})
    steps = _steps(spec)
    rows = [
        ("Name", meta.get("name", MISSING)),
        ("Namespace", meta.get("namespace", MISSING)),
        ("Phase", status.phase.value + _paused_note(status, spec)),
        (
            "Generation",
            f"{meta.get('generation', MISSING)} (observed {_opt(status.observed_generation)})",
        ),
        ("Stable", _revision(status.stable)),
        ("Canary", _revision(status.canary, status.canary_started_at, now)),
    ]
    if status.canary is not None and status.current_step is not None:
        rows.append(("Step", _step(status, steps, now)))
    rows.append(("Weight", _weight(status)))
    if status.message:
        rows.append(("Message", status.message))
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join(f"{label + ':':<{width}}{value}" for label, value in rows)


def _weight(status: ModelDeploymentStatus) -> str:
    """The step's target and, when the router applies another share, what it really applies
    (the replicas router splits by ready pods: 1 canary beside 4 stable is 20%)."""
    text = f"{status.weight}% of traffic on the canary"
    applied = status.applied_weight
    if applied is not None and applied != status.weight:
        text += f" (target; {applied}% applied)"
    return text


def _paused_note(status: ModelDeploymentStatus, spec: dict[str, Any]) -> str:
    if status.paused_by == "analysis":
        failing = status.analysis is not None and status.analysis.provider_error_since
        why = "metrics provider failing too long" if failing else "inconclusive too long"
        return f" (by analysis: {why}, still measured; `kubectl coalmine retry` resumes it)"
    if spec.get("paused"):
        return " (spec.paused: true; `kubectl coalmine resume` continues)"
    return ""


def _steps(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The spec's steps; the API default when the manifest leaves them out."""
    steps = spec.get("canary", {}).get("steps")
    if steps:
        return list(steps)
    return [step.to_manifest() for step in DEFAULT_STEPS]


def _step(status: ModelDeploymentStatus, steps: list[dict[str, Any]], now: datetime) -> str:
    # current_step is an index; people count steps from 1 ("step 2/3" is steps[1]).
    index = status.current_step or 0
    text = f"{index + 1}/{len(steps)}"
    if index < len(steps):
        step = steps[index]
        text += f", target weight {step.get('weight', MISSING)}%, pause {step.get('pause', '1m')}"
    if status.step_started_at is not None:
        text += f", started {age(status.step_started_at, now)} ago"
    return text


def _revision(
    ref: RevisionRef | None, started: datetime | None = None, now: datetime | None = None
) -> str:
    if ref is None:
        return "none"
    text = f"{ref.version} (revision {ref.revision}, {redact_uri(ref.uri)})"
    if started is not None and now is not None:
        text += f", started {age(started, now)} ago"
    return text


def _analysis(analysis: AnalysisStatus | None, now: datetime) -> str:
    if analysis is None:
        return "Analysis: none yet"
    head = (
        f"Analysis: {analysis.verdict} at step {analysis.step + 1}, weight {analysis.weight}%, "
        f"measured {age(analysis.measured_at, now)} ago"
    )
    if analysis.inconclusive_since is not None:
        head += f"; inconclusive for {age(analysis.inconclusive_since, now)}"
    if analysis.provider_error_since is not None:
        head += f"; provider failing for {age(analysis.provider_error_since, now)}"
    rows = [
        [
            c.name,
            c.kind,
            number(c.value),
            number(c.stable_value),
            c.threshold or MISSING,
            _opt(c.samples),
            _verdict(c),
            _with_refused(c.reason, c.refused_labels) or MISSING,
        ]
        for c in analysis.checks
    ]
    headers = ["CHECK", "KIND", "CANARY", "STABLE", "THRESHOLD", "SAMPLES", "VERDICT", "REASON"]
    return head + ("\n" + table(headers, rows, indent="  ") if rows else "")


def _verdict(check: CheckStatus) -> str:
    """``fail (2x)``; a check in dry run says so, since its verdict is never acted on."""
    failures = f" ({check.consecutive_failures}x)" if check.consecutive_failures else ""
    return check.verdict + failures + (" [dry run]" if check.dry_run else "")


def _with_refused(reason: str, refused: dict[str, int]) -> str:
    """A quality check's reason, plus the labels the pods refused (a client sending forged or
    duplicate labels, or a pipeline slower than the horizon, shows here first)."""
    if not refused:
        return reason
    counts = ", ".join(f"{n} {why}" for why, n in sorted(refused.items()))
    return f"{reason}; labels refused: {counts}" if reason else f"labels refused: {counts}"


def _conditions(conditions: list[Condition], now: datetime) -> str:
    if not conditions:
        return "Conditions: none"
    rows = [
        [c.type, c.status, c.reason, age(c.last_transition_time, now), c.message or MISSING]
        for c in conditions
    ]
    return "Conditions:\n" + table(["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"], rows, "  ")


def _rollback(record: RollbackRecord | None, now: datetime) -> str:
    if record is None:
        return ""
    lines = [
        f"Rollback: {record.version} (revision {record.revision}), stage {record.stage}, "
        f"outcome {record.outcome}",
        f"  Reason:   {record.reason}",
    ]
    if record.check is not None:
        on = f" on feature {record.feature}" if record.feature else ""
        stable = (
            f", stable {number(record.stable_value)}" if record.stable_value is not None else ""
        )
        samples = f", {record.samples} samples" if record.samples is not None else ""
        lines.append(
            f"  Check:    {record.check} = {number(record.value)}{on}{stable}{samples}"
            f" (threshold {record.threshold or MISSING})"
        )
    timeline = [f"started {age(record.started_at, now)} ago"]
    if record.traffic_on_stable_at is not None:
        timeline.append(f"traffic on stable {age(record.traffic_on_stable_at, now)} ago")
    if record.completed_at is not None:
        timeline.append(f"completed {age(record.completed_at, now)} ago")
    lines.append("  Timeline: " + ", ".join(timeline))
    return "\n".join(lines)


def _events(events: list[dict[str, Any]] | None, now: datetime) -> str:
    if events is None:
        return "Events: not shown (no permission to list events in this namespace)"
    recent = sorted(events, key=_event_order)[-EVENTS_SHOWN:]
    if not recent:
        return "Events: none"
    rows = [
        [
            age(_event_time(e), now),
            e.get("type", MISSING),
            e.get("reason", MISSING),
            (e.get("message") or MISSING) + _times(e.get("count")),
        ]
        for e in recent
    ]
    return "Events:\n" + table(["AGE", "TYPE", "REASON", "MESSAGE"], rows, "  ")


def _event_time(event: dict[str, Any]) -> datetime | None:
    # Core Events carry lastTimestamp; events.k8s.io ones only eventTime. Fall back in order.
    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        moment = parse_time(event.get(key))
        if moment is not None:
            return moment
    return parse_time(event.get("metadata", {}).get("creationTimestamp"))


def _event_order(event: dict[str, Any]) -> datetime:
    return _event_time(event) or _EPOCH


def _times(count: int | None) -> str:
    return f" (x{count})" if count and count > 1 else ""


def _opt(value: object) -> str:
    return MISSING if value is None else str(value)


def render_history(obj: dict[str, Any], now: datetime) -> str:
    """Where each recent revision ended, newest first, under the current revisions."""
    status = read_status(obj)
    lines = [f"Stable: {_revision(status.stable)}", f"Canary: {_revision(status.canary)}"]
    if status.phase in (Phase.PROGRESSING, Phase.PAUSED, Phase.ROLLING_BACK):
        lines[-1] += f" [{status.phase.value}]"
    if not status.history:
        return "\n".join([*lines, "", "No finished rollouts yet."]) + "\n"
    rows = [
        [h.revision, h.version, h.outcome, age(h.at, now), h.reason or MISSING]
        for h in reversed(status.history)
    ]
    history = table(["REVISION", "VERSION", "OUTCOME", "AGE", "REASON"], rows)
    return "\n".join([*lines, "", history]) + "\n"
