"""Shared building blocks of the ModelDeployment API: the model base class and durations.

Every API model serialises with the camelCase names Kubernetes users expect (``minSamples``),
accepts the snake_case Python names too, and rejects unknown fields so a typo in a manifest
is an error instead of a silently ignored setting.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Base of every spec and status model."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    def to_manifest(self) -> dict[str, Any]:
        """The Kubernetes (camelCase, no nulls) form of this model."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# Go-style durations as Kubernetes users write them: "90s", "5m", "1h30m", "250ms".
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> timedelta:
    """Parse "1h30m" style text (or pass a timedelta/number of seconds through).

    >>> parse_duration("1m30s")
    datetime.timedelta(seconds=90)
    >>> parse_duration("250ms").total_seconds()
    0.25
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if not isinstance(value, str) or not re.fullmatch(DURATION_PATTERN, value):
        raise ValueError(f"{value!r} is not a duration like '30s', '5m' or '1h30m'")
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(value))
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest Go-style text for a duration.

    >>> format_duration(timedelta(seconds=90))
    '1m30s'
    >>> format_duration(timedelta(milliseconds=250))
    '250ms'
    """
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    parts = [(hours, "h"), (minutes, "m"), (seconds, "s"), (millis, "ms")]
    return "".join(f"{n}{unit}" for n, unit in parts if n)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN}),
]
"""A duration written as text in manifests ("30s") and held as a timedelta in Python."""
