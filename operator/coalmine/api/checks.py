"""``spec.canary.analysis.checks``: what must hold for the canary to advance.

Each check names exactly one kind. The built-in kinds are scoped to the canary's (and the
stable's) version automatically; nobody writes PromQL for them. Every kind has absolute limits
and optional limits relative to stable measured over the same window.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from functools import cache
from typing import Annotated, Literal, Protocol

from pydantic import Field
from pydantic.alias_generators import to_snake

from coalmine.api.base import ApiModel
from coalmine.api.rules import Rule, RuleChecked

# The input-feature limits and name syntax are the server's (``--input-features``).
from coalmine_serving import contract

MAX_INPUT_FEATURES = contract.MAX_INPUT_FEATURES
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Confidence = Annotated[float, Field(ge=0.5, le=0.9999)]
ComparisonMethod = Literal["sequential", "fixedLooks"]
"""How a count is compared with stable (docs/analysis.md): ``sequential``, a mixture sequential
probability ratio test valid at any number of looks; ``fixedLooks``, Fisher's exact test at
the confidence split over the looks the rollout plans (valid only for that many)."""

LimitMethod = Literal["sequential", "perLook"]
"""How an absolute limit (``max``, ``min``) is judged (docs/analysis.md): ``sequential``, a
confidence sequence valid at any number of looks, its confidence split over the steps;
``perLook``, a Wilson bound at each look (what coalmine did before: valid for one look)."""


class CheckKind(StrEnum):
    """The kinds of check, spelled as a manifest names them: the one registry of kinds.

    A kind is this member, its settings model below and its field of ``Check``; the operator
    measures it with ``coalmine.analysis.measure.MEASURES`` and judges it with
    ``coalmine.rollout.judge.JUDGES``, both keyed on this enum (a test keeps them complete).
    """

    ERROR_RATE = "errorRate"
    LATENCY = "latency"
    QUALITY = "quality"
    DRIFT = "drift"
    PROMQL = "promql"
    SATURATION = "saturation"
    AGREEMENT = "agreement"

    @property
    def field(self) -> str:
        """The attribute of ``Check`` that holds this kind's settings (``error_rate``)."""
        return _field_of(self.value)


@cache
def _field_of(kind: str) -> str:
    return to_snake(kind)  # a regex: the engine asks for every check at every look


class KindSettings(Protocol):
    """What every kind's settings model answers besides its own limits."""

    @property
    def compares_with_stable(self) -> bool:
        """Whether a verdict needs stable's numbers too (so stable must be measured)."""
        ...


class ErrorRateVsStable(ApiModel):
    """Fail only when the canary is worse than stable with this confidence (a one-sided test
    on the request counts) and its own error rate is at least ``floor``."""

    confidence: Confidence = 0.975
    """The sequential test fails at an e-value of 1 / (1 - confidence), 40 by default: in
    simulated whole rollouts it rolled back at most 0.2% of healthy canaries at any traffic
    (docs/analysis.md has the power study)."""
    floor: Fraction = 0.01
    """A canary error rate below this never fails the comparison: a tiny, noisy canary with a
    couple of errors does not roll back by chance."""
    method: ComparisonMethod = "sequential"


class ErrorRateCheck(ApiModel, RuleChecked):
    """Share of served requests that ended in a server error (5xx). Client errors (4xx) count
    as served, not as errors; requests shed for load (503) or past their deadline (504) are
    neither: the ``saturation`` check judges those."""

    max: Fraction | None = None
    """Absolute ceiling for the canary's error rate: fail when even the lower bound of the rate
    (at 0.95) is above it."""

    limit_method: LimitMethod = "sequential"
    """How ``max`` is judged."""

    vs_stable: ErrorRateVsStable | None = None

    @property
    def compares_with_stable(self) -> bool:
        return self.vs_stable is not None

    __rules__ = (
        Rule(
            cel="has(self.max) || has(self.vsStable)",
            message="spec.canary.analysis.checks[].errorRate: set max, vsStable, or both",
            holds=lambda c: c.max is not None or c.vs_stable is not None,
        ),
    )


class LatencyVsStable(ApiModel):
    """The canary's quantile must stay at or below ``maxRatio`` x stable's, judged by a
    sequential test on the request histograms (docs/analysis.md): fail when the canary's
    share of requests slower than ``maxRatio`` x stable's quantile is above 1 - quantile
    with this confidence."""

    max_ratio: Annotated[float, Field(ge=1.0, le=100.0)] = 1.5
    confidence: Confidence = 0.975
    """The test fails at an e-value of 1 / (1 - confidence), 40 by default."""


class LatencyCheck(ApiModel, RuleChecked):
    """A latency quantile of successful inference requests, from the server's histogram
    (fast refusals and deadline hits are left out: the ``saturation`` check counts those)."""

    quantile: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.99
    max_seconds: Annotated[float | None, Field(gt=0.0)] = None
    vs_stable: LatencyVsStable | None = None

    @property
    def compares_with_stable(self) -> bool:
        return self.vs_stable is not None

    __rules__ = (
        Rule(
            cel="has(self.maxSeconds) || has(self.vsStable)",
            message="spec.canary.analysis.checks[].latency: set maxSeconds, vsStable, or both",
            holds=lambda c: c.max_seconds is not None or c.vs_stable is not None,
        ),
    )


class SaturationCheck(ApiModel):
    """Share of requests the canary's pods refused for load: shed at admission (503) or past
    their deadline (504). They are kept out of the error rate, so a flood cannot roll back a
    good canary as if its model failed, and judged here, so a canary that cannot keep up is
    not hidden either. When stable is as saturated, the cluster is overloaded, not the
    canary: the check holds (inconclusive) instead of failing."""

    max: Fraction = 0.05
    """Fail when even the lower confidence bound of the canary's refused share is above this
    and stable's share is not."""

    confidence: Confidence = 0.95
    limit_method: LimitMethod = "sequential"
    """How ``max`` is judged."""

    @property
    def compares_with_stable(self) -> bool:
        return True  # a flood on both sides is not the canary's fault


class QualityVsStable(ApiModel):
    """How much worse than stable the canary's quality may be (accuracy points, or MAE units)."""

    max_degradation: Annotated[float, Field(ge=0.0)] = 0.02
    confidence: Confidence = 0.99
    """accuracy: fail only when the canary is less accurate than stable with this confidence.
    0.99: at 0.95 the sequential test rolled back 2% of healthy canaries in simulated rollouts
    (it compares at every look; docs/analysis.md)."""
    method: ComparisonMethod = "sequential"
    """accuracy: how the canary's wrong answers are compared with stable's (as for
    ``errorRate.vsStable.method``)."""


class QualityCheck(ApiModel, RuleChecked):
    """Model quality from delayed ground truth sent to the feedback endpoint."""

    metric: Literal["accuracy", "meanAbsoluteError"] = "accuracy"
    min: Fraction | None = None
    """accuracy: the lower confidence bound must be at least this."""

    max: Annotated[float | None, Field(ge=0.0)] = None
    """meanAbsoluteError: the mean absolute error must be at most this."""

    min_labels: Annotated[int, Field(ge=1, le=10_000_000)] = 100
    """Labelled predictions needed before the check can pass or fail."""

    confidence: Confidence = 0.95
    """accuracy: the confidence of the bounds compared with ``min``."""
    limit_method: LimitMethod = "sequential"
    """accuracy: how ``min`` is judged (pass when the lower bound is at least ``min``, fail
    when the upper bound is below it)."""

    vs_stable: QualityVsStable | None = None

    @property
    def compares_with_stable(self) -> bool:
        return self.vs_stable is not None

    __rules__ = (
        Rule(
            cel="self.metric != 'accuracy' || !has(self.max)",
            message="spec.canary.analysis.checks[].quality.max: "
            "only for metric meanAbsoluteError; use quality.min for accuracy",
            holds=lambda c: c.metric != "accuracy" or c.max is None,
        ),
        Rule(
            cel="self.metric != 'meanAbsoluteError' || !has(self.min)",
            message="spec.canary.analysis.checks[].quality.min: "
            "only for metric accuracy; use quality.max for meanAbsoluteError",
            holds=lambda c: c.metric != "meanAbsoluteError" or c.min is None,
        ),
        Rule(
            cel="has(self.min) || has(self.max) || has(self.vsStable)",
            message="spec.canary.analysis.checks[].quality: "
            "set a limit (min for accuracy, max for meanAbsoluteError) or vsStable",
            holds=lambda c: c.min is not None or c.max is not None or c.vs_stable is not None,
        ),
    )


Edge = Annotated[float, Field(allow_inf_nan=False)]


class InputFeature(ApiModel, RuleChecked):
    """One input column whose distribution is compared, counted in the buckets ``edges`` cut."""

    name: Annotated[str, Field(pattern=contract.FEATURE_NAME_PATTERN, max_length=63)]
    """Names the feature in the metrics (the ``feature`` label), verdicts and Events."""

    index: Annotated[int, Field(ge=0, le=contract.MAX_INPUT_FEATURE_INDEX)]
    """Its column in the model's input rows (0 is the first)."""

    edges: Annotated[list[Edge], Field(min_length=1, max_length=contract.MAX_INPUT_FEATURE_EDGES)]
    """Upper bounds of the buckets, strictly increasing; a value equal to an edge counts in
    that edge's bucket, and values above the last one in a bucket of their own."""

    def to_contract(self) -> contract.InputFeature:
        """The feature as the server's ``--input-features`` spells it."""
        return contract.InputFeature(self.name, self.index, tuple(self.edges))

    __rules__ = (
        Rule(
            cel="self.edges.isSorted() && self.edges.all(e, self.edges.exists_one(x, x == e))",
            message="spec.canary.analysis.checks[].drift.inputs[].edges: "
            "must be strictly increasing",
            holds=lambda f: all(a < b for a, b in zip(f.edges, f.edges[1:], strict=False)),
            field_path=".edges",
        ),
    )


class DriftCheck(ApiModel, RuleChecked):
    """Divergence between the canary's and stable's distributions over the same window: of
    their predictions, or, when ``inputs`` is set, of each of those input features (the check
    fails on the feature that drifted most)."""

    method: Literal["sequential", "psi", "chiSquare"] = "sequential"
    """sequential: fail when the distributions differ with ``confidence`` by a test valid at
    any number of looks (a mixture likelihood ratio on the counts, carried across steps) and
    the PSI is above ``max``. psi: the PSI alone, per look. chiSquare: Cramér's V and the
    chi-square test, per look (docs/analysis.md)."""

    max: Annotated[float, Field(gt=0.0, le=10.0)] = 0.2
    """sequential and psi: the population stability index must stay at or below this (0.1
    small, 0.25 large). chiSquare: Cramér's V of the contingency table must stay at or below
    this, and the difference must also be significant at ``confidence``. With ``inputs``, per
    feature."""

    confidence: Confidence = 0.99
    """sequential: fail at an e-value of 1 / (1 - confidence), 100 by default (with ``inputs``,
    the feature's own e-value at k times that for k features). chiSquare: p below
    1 - confidence (split over the features)."""

    inputs: Annotated[
        list[InputFeature] | None, Field(min_length=1, max_length=contract.MAX_INPUT_FEATURES)
    ] = None
    """Compare these input features instead of the predictions. Both sides' servers bucket
    them (the operator passes them in ``--input-features``), so changing the list or its
    edges rolls the stable pods in place (see docs/analysis.md)."""

    @property
    def compares_with_stable(self) -> bool:
        return True  # drift is a comparison

    __rules__ = (
        Rule(
            cel="!has(self.inputs) "
            "|| self.inputs.all(f, self.inputs.exists_one(g, g.name == f.name))",
            message="spec.canary.analysis.checks[].drift.inputs: feature names must be unique",
            holds=lambda d: _unique([f.name for f in d.inputs or []]),
            field_path=".inputs",
        ),
        Rule(
            cel="!has(self.inputs) "
            "|| self.inputs.all(f, self.inputs.exists_one(g, g.index == f.index))",
            message="spec.canary.analysis.checks[].drift.inputs: feature indices must be unique",
            holds=lambda d: _unique([f.index for f in d.inputs or []]),
            field_path=".inputs",
        ),
    )


def _unique(keys: Sequence[object]) -> bool:
    return len(set(keys)) == len(keys)


class PromQLCheck(ApiModel, RuleChecked):
    """A custom PromQL query returning one number. Placeholders: ``{{model}}``, ``{{version}}``,
    ``{{variant}}``, ``{{namespace}}``, ``{{window}}``; filled in for the canary, and for the
    stable when ``maxRatio`` compares the two."""

    query: Annotated[str, Field(min_length=1, max_length=4096)]
    min: float | None = None
    max: float | None = None
    max_ratio: Annotated[float | None, Field(gt=0.0)] = None
    """Canary value divided by the stable value must stay at or below this."""

    @property
    def compares_with_stable(self) -> bool:
        return self.max_ratio is not None

    __rules__ = (
        Rule(
            cel="has(self.min) || has(self.max) || has(self.maxRatio)",
            message="spec.canary.analysis.checks[].promql: set min, max or maxRatio",
            holds=lambda c: c.min is not None or c.max is not None or c.max_ratio is not None,
        ),
        Rule(
            cel="!has(self.min) || !has(self.max) || self.min <= self.max",
            message="spec.canary.analysis.checks[].promql.min: must not be greater than promql.max",
            holds=lambda c: c.min is None or c.max is None or c.min <= c.max,
        ),
    )


class AgreementCheck(ApiModel, RuleChecked):
    """The canary against stable on the same requests, at a shadow step: stable mirrors them
    and compares the two answers row by row (docs/analysis.md). Classifiers: the share of
    rows where both gave the same class, ``min``; regressors: the mean absolute difference of
    the two answers, ``maxMeanAbsDiff``."""

    min: Annotated[float | None, Field(gt=0.0, lt=1.0)] = None
    """Classifiers: fail when agreement is below this with ``confidence``, pass when above it
    with ``confidence`` (a sequential test: valid however often it is looked at)."""
    max_mean_abs_diff: Annotated[float | None, Field(ge=0.0)] = None
    """Regressors: the mean absolute difference over the compared rows must be at most this."""
    confidence: Confidence = 0.95

    @property
    def compares_with_stable(self) -> bool:
        return False  # the comparison is made by stable's pods, read from one series

    __rules__ = (
        Rule(
            cel="has(self.min) != has(self.maxMeanAbsDiff)",
            message="spec.canary.analysis.checks[].agreement: set min (classifiers) or"
            " maxMeanAbsDiff (regressors), not both",
            holds=lambda c: (c.min is None) != (c.max_mean_abs_diff is None),
        ),
    )


def _exactly_one_kind() -> Rule:
    """The "exactly one kind" rule, written from ``CheckKind`` so a new kind joins it."""
    present = ", ".join(f"has(self.{kind.value})" for kind in CheckKind)
    return Rule(
        cel=f"[{present}].filter(x, x).size() == 1",
        message="spec.canary.analysis.checks[]: set exactly one of " + ", ".join(CheckKind),
        holds=lambda c: len(c.kinds_set()) == 1,
    )


class Check(ApiModel, RuleChecked):
    """One named check; exactly one of its kinds is set."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    # One field per ``CheckKind``, named by ``CheckKind.field``.
    error_rate: ErrorRateCheck | None = None
    latency: LatencyCheck | None = None
    quality: QualityCheck | None = None
    drift: DriftCheck | None = None
    promql: PromQLCheck | None = None
    saturation: SaturationCheck | None = None
    agreement: AgreementCheck | None = None
    min_samples: Annotated[int | None, Field(ge=1)] = None
    """Overrides ``policy.minSamples`` for this check."""
    dry_run: bool = False
    """Measure, judge and record the check, but never act on it: its failures neither roll
    back nor pause, and its verdict neither holds nor advances a step."""
    on_fail: Literal["rollback", "pause"] = "rollback"
    """At ``policy.failureLimit`` consecutive failures: roll back, or hold the canary at its
    weight for a person (``coalmine.dev/retry`` resumes it, ``abort`` rolls it back)."""

    def kinds_set(self) -> list[CheckKind]:
        """The kinds whose settings are present (exactly one on a valid check)."""
        return [kind for kind in CheckKind if getattr(self, kind.field) is not None]

    @property
    def kind(self) -> CheckKind:
        """The kind this check is (``errorRate``, ``latency``, ...)."""
        return self.kinds_set()[0]

    @property
    def compares_with_stable(self) -> bool:
        """Whether stable must be measured too: its verdict compares canary with stable."""
        settings: KindSettings = getattr(self, self.kind.field)
        return settings.compares_with_stable

    __rules__ = (_exactly_one_kind(),)


def drift_inputs(checks: Sequence[Check]) -> list[InputFeature]:
    """Every input feature of every drift check, in spec order (repeats included)."""
    return [f for c in checks if c.drift is not None for f in c.drift.inputs or []]


def input_features(checks: Sequence[Check]) -> list[contract.InputFeature]:
    """What both sides' servers must bucket: the input features of all drift checks (each
    belongs to one check: ``Analysis`` refuses a name or an index in two)."""
    return [f.to_contract() for f in drift_inputs(checks)]


def default_checks() -> list[Check]:
    """The checks a canary gets when the spec names none: server errors and p99 latency,
    both absolute and compared with stable, and saturation (at most 5% refused for load)."""
    return [
        Check(
            name="error-rate", error_rate=ErrorRateCheck(max=0.05, vs_stable=ErrorRateVsStable())
        ),
        Check(name="latency-p99", latency=LatencyCheck(quantile=0.99, vs_stable=LatencyVsStable())),
        Check(name="saturation", saturation=SaturationCheck()),
    ]
