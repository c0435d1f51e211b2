"""The status and history views, rendered from realistic objects with a fixed clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from coalmine.cli.render import render_history, render_status
from tests.coalmine.cli.samples import NOW, events, progressing, rolled_back

SNAPSHOTS = Path(__file__).parent / "snapshots"
# Whole pages as files: a change in layout shows up as a readable diff, and docs/cli.md
# quotes the same text.
PROGRESSING_PAGE = (SNAPSHOTS / "status-progressing.txt").read_text()
HISTORY_PAGE = (SNAPSHOTS / "history-rolled-back.txt").read_text()


def test_progressing_page_shows_step_weights_checks_conditions_and_events() -> None:
    assert render_status(progressing(), events(), NOW) == PROGRESSING_PAGE


def test_rollback_record_names_the_check_its_value_and_threshold() -> None:
    page = render_status(rolled_back(), [], NOW)

    assert "Phase:      Degraded\n" in page
    assert "Rollback: v3 (revision c4d5e6f7a8), stage Done, outcome RolledBack\n" in page
    assert "  Check:    error-rate = 0.2113 (threshold <= 0.05)\n" in page
    assert "started 4m0s ago, traffic on stable 3m58s ago, completed 3m46s ago" in page
    assert "Step:" not in page  # no canary step once rolled back
    assert page.endswith("Events: none\n")


def test_failed_check_shows_its_consecutive_failures() -> None:
    obj = progressing()
    check = obj["status"]["analysis"]["checks"][0]
    check.update(verdict="fail", value=0.21, consecutiveFailures=2, reason="0.21 > 0.05")

    row = next(line for line in render_status(obj, [], NOW).splitlines() if "error-rate" in line)

    assert row.split() == [
        *("error-rate", "errorRate", "0.21", "0.0019", "<=", "0.05", "1432"),
        *("fail", "(2x)", "0.21", ">", "0.05"),
    ]


def test_a_dry_run_check_says_so_beside_its_verdict() -> None:
    obj = progressing()
    check = obj["status"]["analysis"]["checks"][0]
    check.update(verdict="fail", consecutiveFailures=3, dryRun=True, reason="worse than stable")

    row = next(line for line in render_status(obj, [], NOW).splitlines() if "error-rate" in line)

    assert "fail (3x) [dry run]" in row


def test_nan_measurement_is_shown_as_nan_not_as_a_number() -> None:
    obj = progressing()
    obj["status"]["analysis"]["checks"][1]["value"] = float("nan")

    assert "latency-p99   latency     NaN " in render_status(obj, [], NOW)


def test_object_the_operator_has_not_seen_reads_as_pending() -> None:
    obj = {"metadata": {"name": "fresh", "namespace": "ml", "generation": 1}, "spec": {}}

    page = render_status(obj, None, NOW)

    assert page.splitlines()[2:6] == [
        "Phase:      Pending",
        "Generation: 1 (observed -)",
        "Stable:     none",
        "Canary:     none",
    ]
    assert "Analysis: none yet" in page
    assert "Events: not shown (no permission to list events in this namespace)" in page


def test_who_paused_is_visible_next_to_the_phase_with_the_way_out() -> None:
    obj = progressing()
    obj["spec"]["paused"] = True
    obj["status"].update(phase="Paused", pausedBy="user")
    by_user = render_status(obj, [], NOW)
    obj["spec"]["paused"] = False
    obj["status"]["pausedBy"] = "analysis"
    by_analysis = render_status(obj, [], NOW)

    assert (
        "Phase:      Paused (spec.paused: true; `kubectl coalmine resume` continues)\n" in by_user
    )
    assert (
        "Phase:      Paused (by analysis: inconclusive too long, still measured; "
        "`kubectl coalmine retry` resumes it)\n"
    ) in by_analysis
    obj["status"]["analysis"]["providerErrorSince"] = obj["status"]["analysis"]["measuredAt"]
    provider_down = render_status(obj, [], NOW)
    assert "Paused (by analysis: metrics provider failing too long, still measured;" in (
        provider_down
    )
    assert "; provider failing for " in provider_down


def test_default_steps_count_when_the_spec_leaves_them_out() -> None:
    obj = progressing()
    del obj["spec"]["canary"]
    obj["status"]["currentStep"] = 0

    assert "Step:       1/2, target weight 10%, pause 1m," in render_status(obj, [], NOW)


def test_only_the_latest_ten_events_are_shown_oldest_first() -> None:
    many = [
        {
            "type": "Normal",
            "reason": f"R{i:02d}",
            "message": "m",
            "eventTime": f"2026-11-27T05:{i:02d}:00Z",
        }
        for i in range(15)
    ]

    page = render_status(progressing(), list(reversed(many)), NOW)

    reasons = [line.split()[2] for line in page.split("Events:\n")[1].splitlines()[1:]]
    assert reasons == [f"R{i:02d}" for i in range(5, 15)]


def test_history_lists_newest_first_under_the_current_revisions() -> None:
    assert render_history(rolled_back(), NOW) == HISTORY_PAGE


def test_history_of_a_running_canary_marks_its_phase() -> None:
    obj = progressing()
    obj["status"]["history"] = []

    assert render_history(obj, NOW).splitlines()[1:] == [
        "Canary: v2 (revision 9b8c7d6e5f, https://models.example/iris/v2.onnx) [Progressing]",
        "",
        "No finished rollouts yet.",
    ]


def test_status_from_an_incompatible_operator_is_an_error_not_a_wrong_page() -> None:
    obj = progressing()
    obj["status"]["phase"] = "Exploding"

    with pytest.raises(ValidationError):
        render_status(obj, [], NOW)


def test_a_revision_uri_is_shown_without_its_credentials() -> None:
    # A presigned URL (or user:password@) in spec.model.uri lands in status; the page shown to
    # whoever runs `kubectl coalmine status` keeps host and path only.
    md = progressing()
    md["status"]["canary"]["uri"] = (
        "https://alice:hunter2@bucket.s3.example/iris/v2.onnx?X-Amz-Signature=presignedsig"
    )

    page = render_status(md, [], NOW)

    assert "https://REDACTED@bucket.s3.example/iris/v2.onnx?REDACTED" in page
    assert "hunter2" not in page and "presignedsig" not in page
