"""The dashboard's view model and memory: pure functions of objects, Events and time."""

from __future__ import annotations

import copy
import json
from datetime import timedelta

from coalmine.api.checks import Check
from coalmine.cli.dashboard import view
from coalmine.cli.dashboard.memory import Memory
from tests.coalmine.cli.samples import NOW, events, progressing, rolled_back

SCRIPT = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def test_row_of_a_progressing_canary() -> None:
    row = view.summary(progressing())
    assert row["namespace"] == "ml" and row["name"] == "iris"
    assert row["phase"] == "Progressing"
    assert row["stable"] == {"version": "v1", "revision": "3f2a9c1b7e"}
    assert row["canary"] == {"version": "v2", "revision": "9b8c7d6e5f"}
    assert (row["weight"], row["appliedWeight"], row["step"]) == (30, 33, "2/3")
    assert row["lastDecision"]["kind"] == "promotion"  # v1's promotion, from the history
    assert row["lastDecision"]["version"] == "v1"


def test_steps_passed_current_pending() -> None:
    obj = progressing()
    states = [s["state"] for s in view.step_rows(obj, view.read_status(obj))]
    assert states == ["passed", "current", "pending"]
    weights = [s["weight"] for s in view.step_rows(obj, view.read_status(obj))]
    assert weights == [10, 30, 60]


def test_steps_after_a_promotion_all_passed_and_after_a_rollback_none() -> None:
    promoted = progressing()
    promoted["status"].update(phase="Healthy", canary=None, currentStep=None, weight=0)
    assert {s["state"] for s in view.step_rows(promoted, view.read_status(promoted))} == {"passed"}
    back = rolled_back()
    assert {s["state"] for s in view.step_rows(back, view.read_status(back))} == {"pending"}


def test_steps_default_when_the_spec_has_none() -> None:
    obj = progressing()
    del obj["spec"]["canary"]
    assert [s["weight"] for s in view.step_rows(obj, view.read_status(obj))] == [10, 50]


def test_decision_of_a_rollback_is_the_record_with_its_numbers() -> None:
    decision = view.last_decision(view.read_status(rolled_back()))
    assert decision is not None
    assert decision["kind"] == "rollback" and decision["outcome"] == "RolledBack"
    assert decision["check"] == "error-rate" and decision["value"] == 0.2113
    assert decision["threshold"] == "<= 0.05" and decision["stage"] == "Done"
    assert decision["at"] == "2026-11-27T05:26:14Z"


def test_a_promotion_after_an_older_rollback_is_the_last_decision() -> None:
    obj = rolled_back()
    obj["status"]["history"].append(
        {
            "revision": "d1d2d3d4d5",
            "version": "v4",
            "outcome": "Promoted",
            "reason": "all 3 steps passed",
            "at": "2026-11-27T05:40:00Z",
        }
    )
    decision = view.last_decision(view.read_status(obj))
    assert decision is not None
    assert (decision["kind"], decision["version"]) == ("promotion", "v4")


def test_no_decision_before_any_rollout_ended() -> None:
    obj = progressing()
    obj["status"]["history"] = []
    assert view.last_decision(view.read_status(obj)) is None


def test_each_kind_of_bound_is_a_line() -> None:
    def bound(spec: dict) -> dict | None:
        return view.limit(Check.model_validate({"name": "c", **spec}))

    assert bound({"errorRate": {"max": 0.05}}) == {"op": "<=", "value": 0.05}
    assert bound({"latency": {"maxSeconds": 0.3}}) == {"op": "<=", "value": 0.3}
    assert bound({"saturation": {"max": 0.1}}) == {"op": "<=", "value": 0.1}
    assert bound({"quality": {"min": 0.9}}) == {"op": ">=", "value": 0.9}
    assert bound({"quality": {"metric": "meanAbsoluteError", "max": 2.0}}) == {
        "op": "<=",
        "value": 2.0,
    }
    assert bound({"promql": {"query": "up", "min": 1.0}}) == {"op": ">=", "value": 1.0}
    assert bound({"drift": {"max": 0.25}}) == {"op": "<=", "value": 0.25}
    # Compared with stable only: no absolute line (stable's own line is the reference).
    assert bound({"errorRate": {"vsStable": {}}}) is None


def test_detail_carries_checks_with_values_bounds_and_events() -> None:
    obj = progressing()
    obj["spec"]["canary"]["analysis"] = {
        "checks": [{"name": "error-rate", "errorRate": {"max": 0.05}}]
    }
    page = view.detail(obj, events(), {"weights": []}, {"charts": []}, NOW)
    checks = {c["name"]: c for c in page["analysis"]["checks"]}
    assert checks["error-rate"]["value"] == 0.0021
    assert checks["error-rate"]["threshold"] == "<= 0.05"
    assert checks["error-rate"]["limit"] == {"op": "<=", "value": 0.05}
    assert checks["accuracy"]["limit"] is None  # not in this spec any more
    assert [e["reason"] for e in page["events"]] == [
        "CanaryStarted",
        "StepAdvanced",
        "AnalysisInconclusive",
    ]
    # The operator announced step 2's weight: a point on the weight chart.
    assert page["weightSeries"] == [{"t": "2026-11-27T05:28:55Z", "weight": 30, "source": "event"}]
    json.dumps(page)  # all JSON


def test_events_none_when_they_could_not_be_listed() -> None:
    assert view.detail(progressing(), None, {}, {}, NOW)["events"] is None


def test_cluster_text_passes_through_unchanged_for_the_page_to_show_as_text() -> None:
    obj = progressing()
    obj["metadata"]["annotations"] = {view.CHANGE_CAUSE: SCRIPT}
    obj["status"]["message"] = SCRIPT
    obj["status"]["analysis"]["checks"][0]["reason"] = SCRIPT
    page = view.detail(obj, [{**events()[0], "message": SCRIPT}], {}, {}, NOW)
    assert page["changeCause"] == SCRIPT and page["message"] == SCRIPT
    assert page["analysis"]["checks"][0]["reason"] == SCRIPT
    assert page["events"][-1]["message"] == SCRIPT


def test_a_spec_this_plugin_cannot_parse_still_shows_the_status() -> None:
    obj = progressing()
    obj["spec"]["canary"]["steps"] = [{"weight": "lots"}]
    page = view.detail(obj, [], {}, {}, NOW)
    assert page["steps"] == [] and page["phase"] == "Progressing"


def test_memory_keeps_weight_changes_and_each_new_measurement() -> None:
    memory, obj = Memory(), progressing()
    memory.record(obj, NOW)
    memory.record(obj, NOW + timedelta(seconds=3))  # nothing new
    later = copy.deepcopy(obj)
    later["status"]["weight"] = 60
    later["status"]["analysis"]["measuredAt"] = "2026-11-27T05:30:02Z"
    later["status"]["analysis"]["checks"][0]["value"] = 0.003
    memory.record(later, NOW + timedelta(seconds=6))
    seen = memory.recall(obj).as_json()
    assert [p["weight"] for p in seen["weights"]] == [30, 60]
    assert [p["value"] for p in seen["checks"]["error-rate"]] == [0.0021, 0.003]
    assert memory.recall(obj).rollout is not None
    assert memory.recall(obj).rollout.canary.version == "v2"  # type: ignore[union-attr]


def test_memory_starts_afresh_for_a_recreated_object_and_forgets_deleted_ones() -> None:
    memory, obj = Memory(), progressing()
    memory.record(obj, NOW)
    again = copy.deepcopy(obj)
    again["metadata"]["uid"] = "another"
    assert memory.recall(again).as_json() == {"weights": [], "checks": {}}
    memory.forget_others([again])
    assert memory.recall(obj).as_json() == {"weights": [], "checks": {}}
