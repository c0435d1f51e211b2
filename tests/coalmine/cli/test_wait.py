"""``kubectl coalmine status --wait``: the ending of each kind of rollout, its exit code, and
that the previous generation's status is never taken for the answer."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from coalmine.cli.wait import FAILED, PROMOTED, ROLLED_BACK, TIMED_OUT, ending
from tests.coalmine.cli.fakes import FakeUserApi
from tests.coalmine.cli.samples import NOW, events, progressing, rolled_back
from tests.coalmine.cli.test_kubectl_commands import run


def healthy() -> dict[str, Any]:
    obj = progressing()
    obj["status"].update(phase="Healthy", stable=obj["status"]["canary"], canary=None, weight=0)
    obj["status"].pop("currentStep")
    return obj


def stale(obj: dict[str, Any]) -> dict[str, Any]:
    """The object right after a new spec was applied: status still from the last generation."""
    obj = copy.deepcopy(obj)
    obj["metadata"]["generation"] += 1
    return obj


def deadline_exceeded() -> dict[str, Any]:
    obj = rolled_back()
    obj["status"]["rollback"]["reason"] = "ProgressDeadlineExceeded: canary not ready in 10m"
    return obj


def aborted() -> dict[str, Any]:
    obj = rolled_back()
    obj["status"]["rollback"].update(outcome="Aborted", reason="Aborted: by a person")
    return obj


def invalid_spec() -> dict[str, Any]:
    """A new generation the operator refused: only ``Ready`` speaks for it."""
    obj = stale(healthy())
    obj["status"]["conditions"].append(
        {
            "type": "Ready",
            "status": "False",
            "reason": "InvalidSpec",
            "message": "spec.runtime.image: evil/x:1 is not allowed",
            "lastTransitionTime": "2026-11-27T05:29:00Z",
            "observedGeneration": obj["metadata"]["generation"],
        }
    )
    return obj


def first_failed() -> dict[str, Any]:
    obj = healthy()
    obj["status"].update(phase="Failed", message="v2 not ready within 10m")
    return obj


@pytest.mark.parametrize(
    ("obj", "code", "words"),
    [
        (healthy(), PROMOTED, "promoted: v2 serves all traffic"),
        (rolled_back(), ROLLED_BACK, "rolled back: error-rate failed"),
        (aborted(), ROLLED_BACK, "aborted: Aborted: by a person"),
        (deadline_exceeded(), FAILED, "failed: ProgressDeadlineExceeded"),
        (first_failed(), FAILED, "failed: v2 not ready within 10m"),
        (invalid_spec(), FAILED, "failed: invalid spec: spec.runtime.image: evil/x:1"),
    ],
    ids=["promoted", "rolled-back", "aborted", "deadline", "first-failed", "invalid-spec"],
)
def test_each_ending_has_its_code(obj: dict[str, Any], code: int, words: str) -> None:
    over = ending(obj)
    assert over is not None and over.exit_code == code
    assert over.summary.startswith(words), over.summary


@pytest.mark.parametrize("obj", [progressing(), stale(healthy()), stale(rolled_back())])
def test_a_rollout_in_flight_or_a_previous_generations_ending_is_no_answer(
    obj: dict[str, Any],
) -> None:
    assert ending(obj) is None


def test_a_refusal_of_an_older_generation_is_no_answer() -> None:
    assert ending(stale(invalid_spec())) is None


def test_wait_polls_until_the_new_generation_is_promoted_then_prints_the_page() -> None:
    # The status of generation 4 says Healthy; generation 5 was just applied.
    cluster = FakeUserApi(objects={"iris": stale(healthy())}, event_list=events())
    states = iter([progressing_of(5), healthy_of(5)])

    def sleep(_: float) -> None:
        cluster.objects["iris"] = next(states)

    result = run(cluster, "status", "iris", "--wait", sleep=sleep)

    assert result.exit_code == PROMOTED, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith("generation 5: waiting for the operator to observe it")
    assert lines[1].endswith("generation 5: Progressing, canary v2 step 2, weight 30%")
    assert lines[2].endswith("generation 5: Healthy")
    assert "Phase:      Healthy" in result.output  # the status page, at the end
    assert lines[-1] == "promoted: v2 serves all traffic"


def test_wait_times_out_with_its_code() -> None:
    cluster = FakeUserApi(objects={"iris": progressing()}, event_list=events())
    clock = [NOW]

    def sleep(seconds: float) -> None:
        clock[0] += timedelta(seconds=seconds)

    result = run(
        cluster, "status", "iris", "--wait", "--timeout", "10s", "--interval", "3", sleep=sleep,
        now=lambda: clock[0],
    )  # fmt: skip

    assert result.exit_code == TIMED_OUT, result.output
    assert clock[0] - NOW == timedelta(seconds=12)
    assert result.output.splitlines()[-1] == "timed out after 10s: the rollout is still running"


@pytest.mark.parametrize(
    "args",
    [["--wait", "--watch"], ["--timeout", "5m"], ["--wait", "--timeout", "soon"]],
)
def test_wait_usage_errors(args: list[str]) -> None:
    result = run(FakeUserApi(objects={"iris": progressing()}), "status", "iris", *args)
    assert result.exit_code == 2, result.output


def progressing_of(generation: int) -> dict[str, Any]:
    obj = progressing()
    obj["metadata"]["generation"] = obj["status"]["observedGeneration"] = generation
    return obj


def healthy_of(generation: int) -> dict[str, Any]:
    obj = healthy()
    obj["metadata"]["generation"] = obj["status"]["observedGeneration"] = generation
    return obj
