"""Drift on input features: each feature scored, the worst one decides and is named, and
the verdict reaches the check's status and the rollback record."""

from __future__ import annotations

import pytest

from coalmine.api import Check
from coalmine.api.status import RollbackRecord
from coalmine.cli.render import render_status
from coalmine.rollout import Measurement, SideMeasurement
from coalmine.rollout.judge import judge
from coalmine.rollout.policy import fold_check
from coalmine.rollout.stats import psi
from coalmine.rollout.verdicts import Judging
from tests.coalmine.cli.samples import NOW, rolled_back
from tests.coalmine.rollout.scenarios import canary_on, finished

J = Judging(min_samples=50, looks=4)
INPUTS = [
    {"name": "sepal_length", "index": 0, "edges": [5.0, 6.0]},
    {"name": "petal_width", "index": 3, "edges": [0.5, 1.5]},
]
PSI = Check.model_validate(
    {"name": "inputs", "drift": {"method": "psi", "max": 0.2, "inputs": INPUTS}}
)
CHI = Check.model_validate(
    {"name": "inputs", "drift": {"method": "chiSquare", "max": 0.1, "inputs": INPUTS}}
)
EVEN = (("5.0", 300.0), ("6.0", 300.0), ("+Inf", 300.0))
PETALS = (("0.5", 300.0), ("1.5", 300.0), ("+Inf", 300.0))
WIDE_PETALS = (("0.5", 60.0), ("1.5", 240.0), ("+Inf", 600.0))  # the canary's inputs moved


def measured(canary: dict[str, tuple[tuple[str, float], ...]], stable=None) -> Measurement:  # type: ignore[no-untyped-def]
    stable = stable or {"sepal_length": EVEN, "petal_width": PETALS}

    def side(features: dict[str, tuple[tuple[str, float], ...]]) -> SideMeasurement:
        return SideMeasurement(samples=900.0, features=tuple(features.items()))

    return Measurement(check="inputs", canary=side(canary), stable=side(stable))


def test_drift_on_one_feature_fails_naming_it_and_by_how_much() -> None:
    verdict = judge(PSI, measured({"sepal_length": EVEN, "petal_width": WIDE_PETALS}), J)

    expected = psi([60, 240, 600], [300, 300, 300])
    assert verdict.verdict == "fail" and verdict.feature == "petal_width"
    assert verdict.value == pytest.approx(expected)
    assert verdict.reason == f"input drift: feature petal_width psi {expected:.4g} > 0.2"
    assert verdict.threshold == "psi <= 0.2, each feature" and verdict.samples == 900


def test_identical_inputs_pass_naming_the_worst_feature() -> None:
    verdict = judge(PSI, measured({"sepal_length": EVEN, "petal_width": PETALS}), J)

    assert verdict.verdict == "pass" and verdict.value == 0.0
    assert verdict.reason == "input drift: worst of 2 features is sepal_length, psi 0"


def test_chi_square_splits_its_significance_over_the_features() -> None:
    verdict = judge(CHI, measured({"sepal_length": EVEN, "petal_width": WIDE_PETALS}), J)

    assert verdict.verdict == "fail" and verdict.feature == "petal_width"
    assert verdict.reason.startswith("input drift: feature petal_width Cramér's V 0.")
    assert "> 0.1, p=" in verdict.reason
    # confidence 0.99 over two features: each is tested at 0.005 (Bonferroni)
    assert verdict.threshold == "cramers v <= 0.1 or p >= 0.005, each feature"


def test_too_few_values_on_either_side_is_inconclusive_naming_the_feature() -> None:
    few = (("0.5", 10.0), ("1.5", 10.0), ("+Inf", 10.0))
    verdict = judge(PSI, measured({"sepal_length": EVEN, "petal_width": few}), J)

    assert verdict.verdict == "inconclusive"
    assert verdict.reason == "input drift: feature petal_width: canary has 30 values, needs 50"
    stable_few = {"sepal_length": EVEN, "petal_width": few}
    verdict = judge(PSI, measured({"sepal_length": EVEN, "petal_width": PETALS}, stable_few), J)
    assert verdict.verdict == "inconclusive" and "stable has 30 values, needs 50" in verdict.reason


def test_a_drift_seen_fails_even_while_another_feature_is_unknown() -> None:
    missing = judge(PSI, measured({"petal_width": PETALS}), J)
    assert missing.verdict == "inconclusive"
    assert "feature sepal_length: no series on canary" in missing.reason

    drifted = judge(PSI, measured({"petal_width": WIDE_PETALS}), J)
    assert drifted.verdict == "fail" and drifted.feature == "petal_width"


def test_buckets_other_than_the_check_s_edges_are_not_compared() -> None:
    # A stable pod still running with older edges (rolling to the new flag): not comparable.
    old_edges = {"sepal_length": (("5.5", 600.0), ("+Inf", 300.0)), "petal_width": PETALS}
    verdict = judge(PSI, measured({"sepal_length": EVEN, "petal_width": PETALS}, old_edges), J)

    assert verdict.verdict == "inconclusive"
    assert "stable buckets [5.5, inf] are not the check's edges" in verdict.reason


def test_output_drift_is_judged_as_before() -> None:
    outputs = Check.model_validate({"name": "d", "drift": {"method": "psi", "max": 0.2}})
    shifted = SideMeasurement(distribution=(("a", 800.0), ("b", 200.0)))
    balanced = SideMeasurement(distribution=(("a", 500.0), ("b", 500.0)))

    verdict = judge(outputs, Measurement("d", shifted, balanced), J)

    assert verdict.verdict == "fail" and verdict.feature is None
    assert verdict.reason == "PSI 0.4159" and verdict.threshold == "psi <= 0.2"


def test_the_feature_reaches_the_check_status_and_the_rollback_page() -> None:
    verdict = judge(PSI, measured({"sepal_length": EVEN, "petal_width": WIDE_PETALS}), J)
    status = fold_check(None, verdict)
    assert status.feature == "petal_width" and status.reason == verdict.reason

    obj = rolled_back()
    record = RollbackRecord.model_validate(obj["status"]["rollback"])
    culprit = {"check": "inputs", "value": 0.6, "threshold": status.threshold}
    record = record.model_copy(update={**culprit, "feature": status.feature})
    obj["status"]["rollback"] = record.to_manifest()
    page = render_status(obj, [], NOW)
    assert "  Check:    inputs = 0.6 on feature petal_width (threshold psi <= 0.2, each" in page


def test_a_canary_whose_inputs_moved_rolls_back_naming_the_feature() -> None:
    moved = measured({"sepal_length": EVEN, "petal_width": WIDE_PETALS})
    check = {"name": "inputs", "drift": {"max": 0.2, "inputs": INPUTS}}
    sim = canary_on(measure=lambda s: (moved,), checks=[check])

    sim.run_until(finished)

    record = sim.status.rollback
    assert sim.status.phase == "Degraded" and record is not None
    assert record.check == "inputs" and record.feature == "petal_width"
    rolling = [e for d in sim.decisions for e in d.events if e.reason == "RollingBack"]
    expected = "input drift: feature petal_width psi 0.6751 (0.6707 beyond noise) > 0.2, e="
    assert expected in rolling[0].message
