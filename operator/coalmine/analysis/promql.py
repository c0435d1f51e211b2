"""PromQL templates, built only from the metric contract's names.

``increase(...[window])`` gives counts, which the engine's counts-based comparisons need
(a ratio of rates loses how many requests it rests on: 1 error in 2 requests is not 50 in 100).
"""

from __future__ import annotations

from coalmine.analysis.scope import SideScope, _escape
from coalmine_serving import contract


def outcome_counts(side: SideScope, window: str) -> str:
    """Inference requests by outcome over the window (server_error vs the rest)."""
    series = f"{contract.REQUESTS_TOTAL.name}{side.matchers()}"
    return f"sum by ({contract.LABEL_OUTCOME}) (increase({series}[{window}]))"


def newest_sample_age(side: SideScope) -> str:
    """Seconds since the side's newest request-counter sample: the freshness guard's number.

    Every pod exports the counter from its start and Prometheus stamps each scrape, so this
    grows only when scrapes stop; a failed scrape or a vanished target ends the series with a
    staleness marker, and then the result is empty."""
    series = f"{contract.REQUESTS_TOTAL.name}{side.matchers()}"
    return f"time() - max(timestamp({series}))"


def latency_quantile(side: SideScope, window: str, quantile: float) -> str:
    """Server-side latency quantile, in seconds, from the request histogram."""
    series = f"{contract.REQUEST_DURATION.series('bucket')}{side.matchers()}"
    return f"histogram_quantile({quantile}, sum by (le) (rate({series}[{window}])))"


def latency_buckets(side: SideScope, window: str) -> str:
    """Requests by cumulative latency bucket (``le``) over the window: what the sequential
    comparison with stable counts (the quantile alone has no sample distribution)."""
    series = f"{contract.REQUEST_DURATION.series('bucket')}{side.matchers()}"
    return f"sum by (le) (increase({series}[{window}]))"


def latency_count(side: SideScope, window: str) -> str:
    """Requests observed by the latency histogram (the quantile's sample size)."""
    series = f"{contract.REQUEST_DURATION.series('count')}{side.matchers()}"
    return f"sum(increase({series}[{window}]))"


def feedback_counts(side: SideScope, window: str) -> str:
    """Labelled predictions by result (correct / incorrect)."""
    series = f"{contract.FEEDBACK_TOTAL.name}{side.origin_matchers()}"
    return f"sum by ({contract.LABEL_RESULT}) (increase({series}[{window}]))"


def abs_error_sum(side: SideScope, window: str) -> str:
    series = f"{contract.FEEDBACK_ABS_ERROR.series('sum')}{side.origin_matchers()}"
    return f"sum(increase({series}[{window}]))"


def abs_error_count(side: SideScope, window: str) -> str:
    series = f"{contract.FEEDBACK_ABS_ERROR.series('count')}{side.origin_matchers()}"
    return f"sum(increase({series}[{window}]))"


def refused_labels(side: SideScope, window: str) -> str:
    """Labels the deployment's pods refused, by reason (forged, unknown, duplicate, expired)."""
    series = f"{contract.FEEDBACK_UNMATCHED_TOTAL.name}{side.deployment_matchers()}"
    return f"sum by ({contract.LABEL_REASON}) (increase({series}[{window}]))"


def class_counts(side: SideScope, window: str) -> str:
    """Classifier predictions by class: the distribution the drift check compares."""
    series = f"{contract.PREDICTIONS_TOTAL.name}{side.matchers()}"
    return f"sum by ({contract.LABEL_CLASS}) (increase({series}[{window}]))"


def value_buckets(side: SideScope, window: str) -> str:
    """Regressor outputs by cumulative histogram bucket (``le``)."""
    series = f"{contract.PREDICTION_VALUE.series('bucket')}{side.matchers()}"
    return f"sum by (le) (increase({series}[{window}]))"


def input_buckets(side: SideScope, window: str) -> str:
    """Input feature values by feature and cumulative bucket (``le``): every feature the
    servers bucket (at most 16, so at most 336 series); the check keeps its own."""
    series = f"{contract.INPUT_FEATURE.series('bucket')}{side.matchers()}"
    return f"sum by ({contract.LABEL_FEATURE}, le) (increase({series}[{window}]))"


def shadow_counts(side: SideScope, window: str) -> str:
    """Rows stable's pods compared with the canary's answers, by result (agree, disagree):
    exported by the stable pods, under the canary's revision (``canary_revision``)."""
    series = f"{contract.SHADOW_COMPARED_TOTAL.name}{_shadow_matchers(side)}"
    return f"sum by ({contract.LABEL_RESULT}) (increase({series}[{window}]))"


def shadow_abs_diff(side: SideScope, window: str) -> str:
    """Sum of |canary - stable| over the compared rows (regressors)."""
    series = f"{contract.SHADOW_ABS_DIFF_TOTAL.name}{_shadow_matchers(side)}"
    return f"sum(increase({series}[{window}]))"


def _shadow_matchers(side: SideScope) -> str:
    """The stable pods' series about this canary: the model, the namespace and the canary's
    revision (the stable pods' own version and revision are theirs, not the canary's)."""
    labels = {contract.LABEL_MODEL: side.model, contract.LABEL_VARIANT: contract.Variant.STABLE}
    if side.namespace_label:
        labels[side.namespace_label] = side.namespace
    if side.revision:  # empty only in tests of bare servers: every canary revision
        labels[contract.LABEL_CANARY_REVISION] = side.revision
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


PLACEHOLDERS = ("model", "version", "variant", "namespace", "window")


def render_custom(template: str, side: SideScope, window: str) -> str:
    """Fill ``{{model}} {{version}} {{variant}} {{namespace}} {{window}}`` in a user's query.

    Plain text substitution (the user writes the quotes): the values are API-validated label
    values, and a template engine would add syntax users would have to escape PromQL from.
    """
    values = {
        "model": side.model,
        "version": side.version,
        "variant": side.variant,
        "namespace": side.namespace,
        "window": window,
    }
    rendered = template
    for name in PLACEHOLDERS:
        rendered = rendered.replace("{{" + name + "}}", values[name])
        rendered = rendered.replace("{{ " + name + " }}", values[name])
    return rendered
