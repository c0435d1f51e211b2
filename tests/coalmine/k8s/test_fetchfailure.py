"""The fetch's reason and message, out of pod JSON as the kubelet reports it."""

from __future__ import annotations

from typing import Any

from coalmine.k8s.fetchfailure import MESSAGE_LIMIT, fetch_failure
from coalmine.rollout.types import FetchFailure

LINE = "coalmine-serve: error: ArtifactAccessDenied: s3://models/iris/v2/m.onnx: AccessDenied (403)"


def _pod(state: str, message: str, finished: str, exit_code: int = 1) -> dict[str, Any]:
    terminated = {
        "exitCode": exit_code,
        "reason": "Error",
        "message": message,
        "finishedAt": finished,
    }
    other = {"waiting": {"reason": "PodInitializing"}}
    status = {"name": "fetch-model", "state": other, "lastState": {}}
    status[state] = {"terminated": terminated}
    return {"metadata": {"name": "p"}, "status": {"initContainerStatuses": [status]}}


def test_the_reason_and_message_of_a_failed_fetch() -> None:
    tail = "starting fetch\nsome retry noise\n" + LINE + "\n"
    found = fetch_failure([_pod("state", tail, "2026-12-01T10:00:00Z")])
    assert found == FetchFailure(
        "ArtifactAccessDenied", "s3://models/iris/v2/m.onnx: AccessDenied (403)"
    )
    assert found.definitive


def test_after_a_restart_the_reason_is_in_last_state() -> None:
    found = fetch_failure([_pod("lastState", LINE, "2026-12-01T10:00:00Z")])
    assert found is not None and found.reason == "ArtifactAccessDenied"


def test_the_newest_failure_among_the_pods_wins() -> None:
    old = _pod("state", LINE, "2026-12-01T10:00:00Z")
    new = _pod(
        "lastState",
        "coalmine-serve: error: ArtifactUnreachable: https://h/m: refused",
        "2026-12-01T10:05:00Z",
    )
    found = fetch_failure([old, new])
    assert found is not None and found.reason == "ArtifactUnreachable"
    assert not found.definitive


def test_no_failure_without_the_error_line_or_with_exit_code_zero() -> None:
    assert fetch_failure([]) is None
    assert fetch_failure([{"metadata": {}, "status": {}}]) is None
    assert fetch_failure([_pod("state", "OOMKilled somewhere", "t")]) is None
    assert fetch_failure([_pod("state", LINE, "t", exit_code=0)]) is None


def test_credentials_in_the_message_are_redacted_and_it_is_capped() -> None:
    leaky = (
        "coalmine-serve: error: ArtifactNotFound: https://user:hunter2@h.example/m.onnx"
        "?X-Amz-Signature=s3cr3t gone " + "x" * 2000
    )
    found = fetch_failure([_pod("state", leaky, "t")])
    assert found is not None and found.reason == "ArtifactNotFound"
    assert "hunter2" not in found.message and "s3cr3t" not in found.message
    assert "h.example/m.onnx" in found.message
    assert len(found.message) == MESSAGE_LIMIT
