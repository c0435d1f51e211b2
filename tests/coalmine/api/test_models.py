"""Behaviour of the API models that the rest of coalmine relies on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from coalmine.api import ModelDeploymentSpec, format_duration, parse_duration

MODEL = {"name": "iris", "version": "v1", "uri": "file:///m.onnx", "format": "onnx"}


def spec(**overrides: object) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate({"model": MODEL, **overrides})


@given(st.integers(min_value=0, max_value=10 * 24 * 3600 * 1000))
def test_durations_round_trip(millis: int) -> None:
    value = timedelta(milliseconds=millis)
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize("text", ["", "5", "5 m", "-1s", "1d", "m5"])
def test_malformed_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_revision_ignores_replicas_traffic_and_analysis() -> None:
    base = spec()
    assert base.revision() == spec(runtime={"replicas": 7}).revision()
    assert base.revision() == spec(canary={"steps": [{"weight": 5}]}).revision()
    assert base.revision() == spec(traffic={"port": 8080}).revision()


def test_revision_changes_with_model_or_pod_template() -> None:
    base = spec()
    other_model = ModelDeploymentSpec.model_validate({"model": {**MODEL, "version": "v2"}})
    assert base.revision() != other_model.revision()
    assert base.revision() != spec(runtime={"env": [{"name": "X", "value": "1"}]}).revision()
    assert len(base.revision()) == 10


def test_defaults_give_a_safe_canary() -> None:
    canary = spec().canary
    assert [s.weight for s in canary.steps] == [10, 50]
    assert [c.kind for c in canary.analysis.checks] == ["errorRate", "latency"]
    assert canary.policy.on_inconclusive == "pause"
    assert canary.analysis.query_window() == timedelta(minutes=1)


def test_manifest_round_trip_is_stable() -> None:
    first = spec(canary={"steps": [{"weight": 20, "pause": "90s"}]})
    again = ModelDeploymentSpec.model_validate(first.to_manifest())
    assert again == first
    assert first.to_manifest()["canary"]["steps"][0]["pause"] == "1m30s"


def test_unknown_fields_are_errors_not_silently_ignored() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        spec(pasued=True)
