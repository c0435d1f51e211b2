"""The statistics against known values, the policy's counters, conditions and doctests."""

from __future__ import annotations

import doctest
import importlib
from datetime import timedelta

import pytest

from coalmine.api import AnalysisStatus, CheckStatus, Condition, Policy
from coalmine.api.status import RECENT_VERDICTS_LIMIT
from coalmine.rollout.conditions import set_condition
from coalmine.rollout.policy import Assessment, assess, fold_analysis, fold_check
from coalmine.rollout.stats import chi_square_drift, error_rate_worse_p, psi, wilson_bounds
from coalmine.rollout.verdicts import CheckVerdict

from .sim import T0

DOCTESTED = ["pods", "pods.replicas", "pods.gatewayapi", "stats", "policy", "verdicts"]


@pytest.mark.parametrize("module", DOCTESTED)
def test_docstring_examples(module: str) -> None:
    """The worked examples in the docstrings are true."""
    result = doctest.testmod(importlib.import_module(f"coalmine.rollout.{module}"))
    assert result.attempted > 0 and result.failed == 0


def test_fisher_is_one_sided() -> None:
    assert error_rate_worse_p(0, 1000, 100, 1000) > 0.99  # better than stable: never "worse"
    assert error_rate_worse_p(100, 1000, 10, 1000) < 1e-10


def test_wilson_matches_known_interval() -> None:
    # Two one-sided 97.5% bounds are the two-sided 95% Wilson interval: 8/10 -> [0.490, 0.943].
    low, high = wilson_bounds(8, 10, 0.975)
    assert round(low, 3) == 0.490 and round(high, 3) == 0.943


def test_drift_identical_is_zero_and_symmetric_scores() -> None:
    assert psi([10, 20, 30], [10, 20, 30]) == 0.0
    assert psi([80, 20], [50, 50]) == pytest.approx(psi([50, 50], [80, 20]))
    p, v = chi_square_drift([10, 20, 0], [10, 20, 0])
    assert p == pytest.approx(1.0) and v == pytest.approx(0.0)


def verdict(v: str) -> CheckVerdict:
    return CheckVerdict(name="c", kind="promql", verdict=v)  # type: ignore[arg-type]


def run(verdicts: list[str], limit: int) -> list[Assessment]:
    policy = Policy(failure_limit=limit)
    analysis: AnalysisStatus | None = None
    out = []
    for i, v in enumerate(verdicts):
        now = T0 + timedelta(seconds=30 * i)
        analysis = fold_analysis(analysis, [verdict(v)], 0, 10, now)
        out.append(assess(analysis, policy, now).assessment)
    return out


@pytest.mark.parametrize(
    ("verdicts", "limit", "rolls_back_at"),
    [
        (["fail", "fail", "pass", "fail"], 3, None),  # flapping under the limit
        (["fail", "fail", "pass", "fail", "fail", "fail"], 3, 5),
        (["fail", "fail"], 2, 1),
        (["fail", "inconclusive", "fail"], 2, 2),  # no data neither excuses nor adds a failure
        (["fail", "pass", "fail", "pass"], 2, None),
        (["pass"] * 10, 1, None),
        (["fail"], 1, 0),
    ],
)
def test_consecutive_failures(verdicts: list[str], limit: int, rolls_back_at: int | None) -> None:
    out = run(verdicts, limit)
    first = out.index(Assessment.ROLL_BACK) if Assessment.ROLL_BACK in out else None
    assert first == rolls_back_at


def test_inconclusive_budget_counts_from_first_inconclusive_and_resets_on_pass() -> None:
    policy = Policy(inconclusive_limit=timedelta(minutes=2))
    analysis = None
    outcomes = []
    for i, v in enumerate(["inconclusive"] * 4 + ["pass"] + ["inconclusive"] * 5):
        now = T0 + timedelta(minutes=i)
        analysis = fold_analysis(analysis, [verdict(v)], 0, 10, now)
        outcomes.append(assess(analysis, policy, now).assessment)
    expected = [False, False, True, True, False, False, False, True, True, True]
    assert [o == Assessment.INCONCLUSIVE_LIMIT for o in outcomes] == expected


def test_recent_verdicts_capped() -> None:
    status: CheckStatus | None = None
    for _ in range(50):
        status = fold_check(status, verdict("pass"))
    assert status is not None and len(status.recent) == RECENT_VERDICTS_LIMIT


def test_condition_transition_time_moves_only_on_flip() -> None:
    first = Condition(type="Ready", status="False", reason="A", last_transition_time=T0)
    later = T0 + timedelta(hours=1)
    same = set_condition(
        [first], first.model_copy(update={"reason": "B", "last_transition_time": later})
    )
    assert same[0].last_transition_time == T0 and same[0].reason == "B"
    flipped = set_condition(
        same, first.model_copy(update={"status": "True", "last_transition_time": later})
    )
    assert flipped[0].last_transition_time == later
