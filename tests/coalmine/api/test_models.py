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


def test_a_copy_with_another_model_or_runtime_has_its_own_revision() -> None:
    base = spec()
    base.revision()  # computed once and kept by the spec: a copy must not inherit it
    newer = base.model_copy(update={"model": base.model.model_copy(update={"version": "v2"})})
    rebuilt = ModelDeploymentSpec.model_validate(newer.to_manifest())
    assert newer.revision() == rebuilt.revision() != base.revision()
    assert base.model_copy(update={"paused": True}).revision() == base.revision()


def test_defaults_give_a_safe_canary() -> None:
    canary = spec().canary
    assert [s.weight for s in canary.steps] == [10, 50]
    assert [c.kind for c in canary.analysis.checks] == ["errorRate", "latency", "saturation"]
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


def _drift_inputs(*features: tuple[str, int, list[float]]) -> dict[str, object]:
    inputs = [{"name": n, "index": i, "edges": e} for n, i, e in features]
    return {"name": f"inputs-{features[0][1]}", "drift": {"max": 0.2, "inputs": inputs}}


def test_drift_on_inputs_gives_the_server_its_features_and_not_a_new_revision() -> None:
    from coalmine.api.checks import input_features
    from coalmine_serving.contract import format_input_features, parse_input_features

    checks = [
        _drift_inputs(("sepal_length", 0, [4.5, 5.5, 6.5]), ("petal_width", 3, [0.5, 1.5])),
        {"name": "outputs", "drift": {"method": "chiSquare"}},
        _drift_inputs(("sepal_width", 1, [3])),
    ]
    with_inputs = spec(canary={"steps": [{"weight": 10}], "analysis": {"checks": checks}})
    features = input_features(with_inputs.canary.analysis.checks)
    assert [(f.name, f.index, f.edges) for f in features] == [
        ("sepal_length", 0, (4.5, 5.5, 6.5)),
        ("petal_width", 3, (0.5, 1.5)),
        ("sepal_width", 1, (3.0,)),
    ]
    # What the operator writes, the server reads back unchanged.
    assert parse_input_features(format_input_features(features)) == sorted(
        features, key=lambda f: f.name
    )
    assert with_inputs.canary.analysis.checks[1].drift.inputs is None  # type: ignore[union-attr]
    assert with_inputs.revision() == spec().revision()  # analysis settings start no canary


@pytest.mark.parametrize(
    "drift,message",
    [
        ({"inputs": []}, "at least 1 item"),
        ({"inputs": [{"name": "a", "index": 0, "edges": [1, float("inf")]}]}, "finite number"),
        ({"inputs": [{"name": "a", "index": 0, "edges": []}]}, "at least 1 item"),
    ],
)
def test_drift_inputs_the_examples_do_not_cover(drift: dict[str, object], message: str) -> None:
    checks = [{"name": "d", "drift": drift}]
    with pytest.raises(ValidationError, match=message):
        spec(canary={"steps": [{"weight": 10}], "analysis": {"checks": checks}})
