"""``spec.canary`` and ``spec.rollback``: the steps, the analysis and the policies."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field

from coalmine.api.base import ApiModel, Duration
from coalmine.api.checks import (
    MAX_INPUT_FEATURES,
    Check,
    CheckKind,
    default_checks,
    drift_inputs,
)
from coalmine.api.rules import Rule, RuleChecked

MAX_STEPS = 20
_DRIFT_INPUTS = "self.checks.map(c, has(c.drift) && has(c.drift.inputs) ? size(c.drift.inputs) : 0)"


def _one_check_per(key: str) -> str:
    """CEL: no two drift checks name an input feature with the same ``key`` (the checks'
    own rules keep it unique inside each). One rule per key: both in one is over budget."""
    return (
        "self.checks.all(a, !has(a.drift) || !has(a.drift.inputs) || a.drift.inputs.all(f,"
        " self.checks.exists_one(b, has(b.drift) && has(b.drift.inputs)"
        f" && b.drift.inputs.exists(g, g.{key} == f.{key}))))"
    )


class Step(ApiModel, RuleChecked):
    """Hold the canary at ``weight`` percent of traffic for at least ``pause``; or, a shadow
    step (``shadow``, weight 0), give it no client at all while stable mirrors ``shadow``
    percent of its requests to it and compares the answers."""

    weight: Annotated[int, Field(ge=0, le=100)] = 0
    shadow: Annotated[int | None, Field(ge=1, le=100)] = None
    """Percent of stable's requests mirrored to the canary at this step (weight stays 0: every
    client answer is stable's). Only the first step may be a shadow step."""
    pause: Duration = timedelta(minutes=1)
    """Minimum time at this weight; the step passes only when the pause has elapsed and every
    check passed after it."""

    @property
    def is_shadow(self) -> bool:
        return self.shadow is not None

    __rules__ = (
        Rule(
            cel="has(self.shadow) ? (!has(self.weight) || self.weight == 0)"
            " : (has(self.weight) && self.weight >= 1)",
            message="spec.canary.steps[]: a step sets weight (1-100), or shadow (1-100) with"
            " weight 0",
            holds=lambda s: s.weight == 0 if s.shadow is not None else s.weight >= 1,
        ),
    )


def _unique(keys: list[str] | list[int]) -> bool:
    return len(set(keys)) == len(keys)


MAX_PROMETHEUS_TIMEOUT = timedelta(seconds=30)
"""A query slower than this is no measurement: the next tick measures again."""


class PrometheusSource(ApiModel, RuleChecked):
    """Which of the operator's Prometheus servers the metrics are queried on.

    The operator lists the servers (``COALMINE_PROMETHEUS_ENDPOINTS``, plus ``default``): an
    object picks one by name and cannot make the operator send requests anywhere else.
    """

    endpoint: Annotated[
        str | None, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    ] = None
    """Name of one of the operator's Prometheus endpoints; ``default`` when unset."""

    address: Annotated[str | None, Field(pattern=r"^https?://.+", max_length=2048)] = None
    """Deprecated: a Prometheus base URL, accepted only when it is exactly the URL of one of
    the operator's endpoints (else every check is inconclusive, naming this field)."""

    timeout: Duration = timedelta(seconds=5)
    """Per query, 1s to 30s; the operator may cap it lower (``COALMINE_PROMETHEUS_MAX_TIMEOUT``)."""

    __rules__ = (
        Rule(
            cel="!has(self.endpoint) || !has(self.address)",
            message="spec.canary.analysis.prometheus: set endpoint or address, not both",
            holds=lambda p: p.endpoint is None or p.address is None,
            field_path=".endpoint",
        ),
        Rule(
            cel="!has(self.timeout) || (duration(self.timeout) >= duration('1s')"
            f" && duration(self.timeout) <= duration('{MAX_PROMETHEUS_TIMEOUT.seconds}s'))",
            message="spec.canary.analysis.prometheus.timeout: must be between 1s and"
            f" {MAX_PROMETHEUS_TIMEOUT.seconds}s",
            holds=lambda p: timedelta(seconds=1) <= p.timeout <= MAX_PROMETHEUS_TIMEOUT,
            field_path=".timeout",
        ),
    )


class Analysis(ApiModel, RuleChecked):
    """How often and over what window the checks are measured."""

    interval: Duration = timedelta(seconds=30)
    """Time between two measurements; also the reconcile period while a canary runs."""

    window: Duration | None = None
    """Range of each query (``rate(...[window])``); defaults to twice the interval, at least 1m."""

    prometheus: PrometheusSource = PrometheusSource()
    checks: Annotated[
        list[Check],
        Field(
            max_length=32,
            # The API server itself rejects two checks with the same name.
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        ),
    ] = Field(default_factory=default_checks)

    def query_window(self) -> timedelta:
        """The effective query range."""
        return self.window or max(2 * self.interval, timedelta(minutes=1))

    __rules__ = (
        Rule(
            cel="duration(self.interval) >= duration('1s')",
            message="spec.canary.analysis.interval: must be at least 1s",
            holds=lambda a: a.interval >= timedelta(seconds=1),
            field_path=".interval",
        ),
        Rule(
            cel="!has(self.window) || duration(self.window) >= duration(self.interval)",
            message="spec.canary.analysis.window: must be at least the interval",
            holds=lambda a: a.window is None or a.window >= a.interval,
            field_path=".window",
        ),
        # The API server enforces this through the list-map key on `checks` (a CEL rule doing
        # the same pairwise comparison is far over the API server's cost budget); this lets
        # `coalmine validate` say it offline.
        Rule(
            cel=None,
            message="spec.canary.analysis.checks: check names must be unique",
            holds=lambda a: len({c.name for c in a.checks}) == len(a.checks),
            field_path=".checks",
        ),
        # One --input-features flag serves every drift check, on stable and canary alike.
        # `checks` has no default in the CRD (the operator fills in the default checks), so an
        # `analysis` naming only its Prometheus has none: every rule on it says `has` first.
        Rule(
            cel=f"!has(self.checks) || {_DRIFT_INPUTS}.sum() <= {MAX_INPUT_FEATURES}",
            message=f"spec.canary.analysis.checks: at most {MAX_INPUT_FEATURES} input features"
            " in all drift checks together",
            holds=lambda a: len(drift_inputs(a.checks)) <= MAX_INPUT_FEATURES,
            field_path=".checks",
        ),
        Rule(
            cel=f"!has(self.checks) || {_one_check_per('name')}",
            message="spec.canary.analysis.checks: an input feature name belongs to one drift"
            " check only",
            holds=lambda a: _unique([f.name for f in drift_inputs(a.checks)]),
            field_path=".checks",
        ),
        Rule(
            cel=f"!has(self.checks) || {_one_check_per('index')}",
            message="spec.canary.analysis.checks: an input feature index belongs to one drift"
            " check only",
            holds=lambda a: _unique([f.index for f in drift_inputs(a.checks)]),
            field_path=".checks",
        ),
    )


class Policy(ApiModel):
    """What turns check verdicts into decisions."""

    failure_limit: Annotated[int, Field(ge=1, le=100)] = 2
    """Consecutive failed measurements of a check before rolling back; a pass resets the count."""

    min_samples: Annotated[int, Field(ge=1, le=10_000_000)] = 50
    """Requests (or labels, or predictions) a check needs in its window to be conclusive."""

    inconclusive_limit: Duration = timedelta(minutes=10)
    """How long measurements may stay inconclusive (no data, too few samples) before
    ``onInconclusive`` applies."""

    provider_error_limit: Duration = timedelta(minutes=10)
    """How long the metrics provider may keep failing (timeouts, refused connections, errors
    from Prometheus) before ``onInconclusive`` applies; counted apart from no data, and shown
    as the ``AnalysisError`` condition."""

    on_inconclusive: Literal["pause", "rollback"] = "pause"
    """``pause``: hold the canary at its weight, still measuring (a failing check rolls back),
    until a person resumes it; ``rollback``: give up. Applies past either limit."""


class CanaryStrategy(ApiModel, RuleChecked):
    """How a new revision is rolled out."""

    steps: Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)]
    analysis: Analysis = Analysis()
    policy: Policy = Policy()
    progress_deadline: Duration = timedelta(minutes=10)
    """How long a new revision's pods may take to become ready before the rollout fails."""

    def checks_at(self, step: int) -> list[Check]:
        """The checks that judge ``step``: at a shadow step the canary answers no client, so
        no label can come back for it (``quality`` waits for the weighted steps); at a
        weighted step nothing is mirrored (``agreement`` belongs to the shadow step)."""
        shadow = self.steps[min(step, len(self.steps) - 1)].is_shadow
        skipped = CheckKind.QUALITY if shadow else CheckKind.AGREEMENT
        return [c for c in self.analysis.checks if c.kind is not skipped]

    __rules__ = (
        Rule(
            cel="self.steps.all(s, self.steps.exists_one(t, t.weight == s.weight))"
            " && self.steps.map(s, s.weight).isSorted()",
            message="spec.canary.steps: weights must be strictly ascending (each step above"
            " the last; a shadow step, weight 0, can only be the first)",
            holds=lambda c: all(
                a.weight < b.weight for a, b in zip(c.steps, c.steps[1:], strict=False)
            ),
            field_path=".steps",
        ),
        Rule(
            cel="!has(self.analysis) || !has(self.analysis.checks)"
            " || !self.analysis.checks.exists(c, has(c.agreement))"
            " || self.steps.exists(s, has(s.shadow))",
            message="spec.canary.analysis.checks[].agreement: needs a shadow step"
            " (spec.canary.steps[0].shadow): only mirrored requests are compared",
            holds=lambda c: (
                not any(k.agreement for k in c.analysis.checks) or any(s.is_shadow for s in c.steps)
            ),
            field_path=".analysis.checks",
        ),
        Rule(
            cel="duration(self.progressDeadline) >= duration('10s')",
            message="spec.canary.progressDeadline: must be at least 10s",
            holds=lambda c: c.progress_deadline >= timedelta(seconds=10),
            field_path=".progressDeadline",
        ),
    )


class RollbackPolicy(ApiModel):
    """How a failed canary is taken down."""

    scale_down_delay: Duration = timedelta(seconds=10)
    """After traffic is confirmed back on stable, wait this long (in-flight requests drain)
    before scaling the canary to zero."""
