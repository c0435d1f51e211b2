"""``kubectl coalmine status NAME --wait``: how a rollout ended, as a process exit code.

Pure: from the object as the API server returns it to an ``Ending`` (or None: not over yet).
A status is believed only for the generation it says it observed, so the previous revision's
``Healthy`` (or ``Degraded``) is never taken for the answer about the spec just applied: the
operator writes ``observedGeneration`` in the same status write that starts the new canary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coalmine.api import ModelDeploymentStatus, Phase
from coalmine.cli.render import read_status

# Exit codes (docs/cli.md). 1-5 are the plugin's errors (cluster.py); these say how it ended.
PROMOTED, ROLLED_BACK, FAILED, TIMED_OUT = 0, 6, 7, 8
DEADLINE = "ProgressDeadlineExceeded"
INVALID_SPEC = "InvalidSpec"


@dataclass(frozen=True)
class Ending:
    """How the rollout of the spec's generation ended."""

    exit_code: int
    summary: str


def ending(obj: dict[str, Any]) -> Ending | None:
    """The ending of the rollout of ``obj``'s current generation, or None while it runs (or
    the operator has not seen this generation yet)."""
    generation = obj.get("metadata", {}).get("generation")
    status = read_status(obj)
    refused = _refusal(status, generation)
    if refused is not None:
        return refused
    if generation is None or status.observed_generation != generation:
        return None
    return _by_phase(status)


def _refusal(status: ModelDeploymentStatus, generation: int | None) -> Ending | None:
    """The operator refused this generation's spec (its models or its policy): it writes only
    the ``Ready`` condition, for that generation, and never observes the spec."""
    ready = next((c for c in status.conditions if c.type == "Ready"), None)
    if ready is None or ready.reason != INVALID_SPEC or ready.observed_generation != generation:
        return None
    return Ending(FAILED, f"failed: invalid spec: {ready.message}")


def _by_phase(status: ModelDeploymentStatus) -> Ending | None:
    stable = status.stable.version if status.stable is not None else "?"
    if status.phase == Phase.HEALTHY and status.canary is None:
        return Ending(PROMOTED, f"promoted: {stable} serves all traffic")
    if status.phase == Phase.FAILED:
        return Ending(FAILED, f"failed: {status.message or 'the first revision never served'}")
    if status.phase == Phase.DEGRADED:
        record = status.rollback
        reason = record.reason if record is not None else status.message
        if reason.startswith(DEADLINE):
            return Ending(FAILED, f"failed: {reason}; {stable} still serves")
        outcome = "aborted" if record is not None and record.outcome == "Aborted" else "rolled back"
        return Ending(ROLLED_BACK, f"{outcome}: {reason}; {stable} still serves")
    return None


def progress_line(obj: dict[str, Any]) -> str:
    """One line per change while waiting: generation, phase, step and weight."""
    status = read_status(obj)
    generation = obj.get("metadata", {}).get("generation")
    if status.observed_generation != generation:
        return f"generation {generation}: waiting for the operator to observe it"
    line = f"generation {generation}: {status.phase.value}"
    if status.canary is not None:
        line += f", canary {status.canary.version}"
        if status.current_step is not None:
            line += f" step {status.current_step + 1}"
        line += f", weight {status.weight}%"
    return line
