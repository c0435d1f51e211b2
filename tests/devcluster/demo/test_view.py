"""The demo's wording: one progress line per change, and a summary with the numbers."""

from __future__ import annotations

from collections import Counter

from e2e.devcluster.demo.view import (
    ClientCounts,
    LabelCounts,
    Stage,
    progress_key,
    progress_line,
    summary,
)

CANARY = {
    "phase": "Progressing",
    "stable": {"version": "v1"},
    "canary": {"version": "v2"},
    "weight": 20,
    "currentStep": 0,
    "analysis": {
        "checks": [
            {"name": "error-rate", "value": 0.0, "threshold": "<= 0.05", "verdict": "pass"},
            {"name": "latency-p99", "value": None, "threshold": "<= 1s", "verdict": "inconclusive"},
        ]
    },
}


def test_progress_line_shows_phase_versions_weight_step_and_checks() -> None:
    line = progress_line(3.25, CANARY, steps=2)
    assert line.startswith("[   3.2s] Progressing")
    for part in ("stable=v1 canary=v2", "weight= 20%", "step 1/2", "error-rate 0 vs <= 0.05 pass"):
        assert part in line, line
    assert "latency-p99 n/a vs <= 1s inconclusive" in line


def test_a_new_line_only_when_something_shown_changes() -> None:
    later = {**CANARY, "stepStartedAt": "2026-01-01T00:00:05Z"}
    assert progress_key(later) == progress_key(CANARY)
    assert progress_key({**CANARY, "weight": 50}) != progress_key(CANARY)


def test_progress_line_before_any_status() -> None:
    line = progress_line(0.0, {}, steps=2)
    assert "Pending" in line and "stable=- canary=-" in line and "step -" in line


def test_summary_has_durations_requests_and_the_decision_record() -> None:
    clients = ClientCounts(Counter(stable=400, canary=100), Counter(canary=19), Counter(stable=2))
    stage = Stage("v3: 20% errors", 21.5, "rolled back", clients)
    stage.phases = {"Progressing": 13.0, "RollingBack": 8.5}
    rollback = {"check": "error-rate", "value": 0.19, "threshold": "<= 0.05"}
    text = summary([stage], CANARY["analysis"]["checks"], rollback)  # type: ignore[index]
    assert "v3: 20% errors" in text and "21.5s  rolled back" in text
    rows = [line.split() for line in text.splitlines()]
    assert ["v3:", "20%", "errors", "canary", "100", "19", "0"] in rows
    assert ["v3:", "20%", "errors", "stable", "400", "0", "2"] in rows
    assert "(Progressing 13.0s, RollingBack 8.5s)" in text
    assert "error-rate 0 vs <= 0.05 pass" in text
    assert "rolled back on error-rate: value 0.19 vs <= 0.05" in text


def test_summary_says_which_version_answered_requests_sent_through_a_service() -> None:
    before = ClientCounts(Counter(Service=100), Counter(), Counter(), Counter(v1=100))
    now = ClientCounts(Counter(Service=350), Counter(Service=3), Counter(), Counter(v1=300, v2=47))
    stage = Stage("v2: good canary", 30.0, "promoted", now - before)
    text = summary([stage], [], {})
    rows = [line.split() for line in text.splitlines()]
    assert ["v2:", "good", "canary", "Service", "250", "3", "0"] in rows
    assert "answered by: v1 200, v2 47" in text


ACCURACY = {
    "name": "accuracy",
    "kind": "quality",
    "value": 0.0217,
    "threshold": "wilson bound >= 0.8",
    "verdict": "fail",
    "samples": 46,
    "reason": "accuracy 0.0217 (1/46), bounds [0.00385, 0.113] below 0.8",
    "refusedLabels": {"forged": 1},
}


def test_summary_shows_the_labels_the_pipeline_posted_and_what_the_pods_refused() -> None:
    before = LabelCounts(added=100, joined=90, batches=10)
    now = LabelCounts(added=400, joined=370, batches=31, refused=Counter(duplicate=2, forged=1))
    stage = Stage("v3: wrong, HTTP 200", 20.0, "rolled back", labels=now - before)
    total = LabelCounts(added=450, joined=447, batches=35, refused=Counter(duplicate=2, forged=1))
    text = summary([stage], [ACCURACY], {}, total)
    rows = [line.split() for line in text.splitlines()]
    assert [
        "v3:",
        "wrong,",
        "HTTP",
        "200",
        "300",
        "280",
        "21",
        "2",
        "duplicate,",
        "1",
        "forged",
    ] in rows
    assert "447 of 450 labels joined (99.33%) in 35 batches; refused: 2 duplicate, 1 forged" in text


def test_summary_with_nothing_refused_says_none() -> None:
    stage = Stage("v2: good canary", labels=LabelCounts(added=5, joined=5, batches=1))
    text = summary([stage], [], {}, LabelCounts(added=5, joined=5, batches=1))
    assert ["v2:", "good", "canary", "5", "5", "1", "none"] in [
        ln.split() for ln in text.splitlines()
    ]
    assert "5 of 5 labels joined (100.00%) in 1 batches; refused: none" in text


def test_the_decision_record_shows_the_quality_gates_labels_bound_threshold_and_reason() -> None:
    rollback = {"check": "accuracy", "value": 0.0217, "threshold": "wilson bound >= 0.8"}
    text = summary([], [ACCURACY, CANARY["analysis"]["checks"][0]], rollback)  # type: ignore[index]
    assert "accuracy 0.0217 vs wilson bound >= 0.8 fail" in text
    assert "46 labels: accuracy 0.0217 (1/46), bounds [0.00385, 0.113] below 0.8" in text
    assert "upper end of the accuracy's confidence interval is below the minimum" in text
    assert "labels refused by the pods: 1 forged" in text
    assert "rolled back on accuracy: value 0.0217 vs wilson bound >= 0.8" in text
