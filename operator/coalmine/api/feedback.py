"""``spec.feedback``: how long a prediction's true label may take to come back."""

from __future__ import annotations

from datetime import timedelta

from coalmine.api.base import ApiModel, Duration
from coalmine.api.rules import Rule, RuleChecked

MIN_HORIZON = timedelta(minutes=1)
MAX_HORIZON = timedelta(days=30)


class Feedback(ApiModel, RuleChecked):
    """Delayed ground truth, joined through signed prediction receipts."""

    horizon: Duration = timedelta(hours=48)
    """How long after a prediction its label is still accepted (older receipts are refused as
    ``expired``). Also how long the operator keeps a retired receipt key, so a label in flight
    never meets a key that is gone."""

    __rules__ = (
        Rule(
            cel="duration(self.horizon) >= duration('1m')",
            message="spec.feedback.horizon: must be at least 1m",
            holds=lambda f: f.horizon >= MIN_HORIZON,
            field_path=".horizon",
        ),
        Rule(
            cel="duration(self.horizon) <= duration('720h')",
            message="spec.feedback.horizon: must be at most 720h (30 days)",
            holds=lambda f: f.horizon <= MAX_HORIZON,
            field_path=".horizon",
        ),
    )
