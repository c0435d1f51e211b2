"""``CheckKind`` is the one registry of check kinds: the API, measure and judge agree on it."""

from __future__ import annotations

import pytest

from coalmine.analysis.measure import MEASURES
from coalmine.api.checks import Check, CheckKind
from coalmine.rollout.judge import JUDGES


@pytest.mark.parametrize("kind", list(CheckKind))
def test_every_kind_is_complete(kind: CheckKind) -> None:
    """A new kind needs its field on ``Check``, a measure and a judge; this names what's missing."""
    assert kind.field in Check.model_fields, f"Check has no field {kind.field} for {kind}"
    assert Check.model_fields[kind.field].alias == kind.value, kind
    assert kind in MEASURES, f"{kind} is not in coalmine.analysis.measure.MEASURES"
    assert kind in JUDGES, f"{kind} is not in coalmine.rollout.judge.JUDGES"


def test_registries_hold_only_kinds() -> None:
    assert set(MEASURES) == set(JUDGES) == set(CheckKind)
    settings = {"name", "min_samples", "dry_run", "on_fail"}
    assert set(Check.model_fields) - settings == {kind.field for kind in CheckKind}


def test_exactly_one_kind_rule_names_every_kind() -> None:
    (rule,) = Check.__rules__
    assert rule.cel is not None
    for kind in CheckKind:
        assert f"has(self.{kind.value})" in rule.cel
        assert kind.value in rule.message


@pytest.mark.parametrize(
    ("settings", "kind", "compares"),
    [
        ({"errorRate": {"max": 0.1}}, CheckKind.ERROR_RATE, False),
        ({"errorRate": {"vsStable": {}}}, CheckKind.ERROR_RATE, True),
        ({"latency": {"maxSeconds": 1}}, CheckKind.LATENCY, False),
        ({"latency": {"vsStable": {}}}, CheckKind.LATENCY, True),
        ({"quality": {"min": 0.9}}, CheckKind.QUALITY, False),
        ({"quality": {"vsStable": {}}}, CheckKind.QUALITY, True),
        ({"drift": {}}, CheckKind.DRIFT, True),
        ({"promql": {"query": "q", "max": 1}}, CheckKind.PROMQL, False),
        ({"promql": {"query": "q", "maxRatio": 2}}, CheckKind.PROMQL, True),
    ],
)
def test_kind_and_whether_stable_is_needed(
    settings: dict[str, object], kind: CheckKind, compares: bool
) -> None:
    check = Check.model_validate({"name": "c", **settings})
    assert check.kind is kind
    assert check.compares_with_stable is compares
