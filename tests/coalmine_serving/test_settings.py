from __future__ import annotations

import pytest
from pydantic import ValidationError

from coalmine_serving.contract import ModelFormat, Variant
from coalmine_serving.settings import ServingSettings, load_settings


def test_environment_configures_and_flags_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COALMINE_SERVING_MODEL_NAME", "from-env")
    monkeypatch.setenv("COALMINE_SERVING_VARIANT", "canary")
    monkeypatch.setenv("COALMINE_SERVING_SKOPS_TRUSTED_TYPES", "a.B, c.D")
    monkeypatch.setenv("COALMINE_SERVING_PREDICTION_BUCKETS", "0.5,1,2")
    settings = load_settings(model_name="from-flag", model_version=None)
    assert settings.model_name == "from-flag"
    assert settings.model_version == "1"  # None means "not given", so the default stays
    assert settings.variant is Variant.CANARY
    assert settings.skops_trusted_types == ["a.B", "c.D"]
    assert settings.prediction_buckets == [0.5, 1.0, 2.0]


def test_joblib_needs_allow_pickle_and_says_why() -> None:
    with pytest.raises(ValidationError, match="allow_pickle"):
        load_settings(model_format="joblib")
    assert (
        load_settings(model_format="joblib", allow_pickle=True).model_format is ModelFormat.JOBLIB
    )


@pytest.mark.parametrize(
    "field,value",
    [
        ("model_name", "../etc"),
        ("sha256", "abc"),
        ("fault_error_rate", 1.5),
        ("port", 0),
        ("max_concurrency", 0),
        ("variant", "blue"),
        ("no_such_setting", 1),
    ],
)
def test_invalid_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        load_settings(**{field: value})


def test_fault_injection_and_pickle_are_off_by_default() -> None:
    settings = ServingSettings()
    assert settings.fault_error_rate == 0 and settings.fault_latency_seconds == 0
    assert settings.allow_pickle is False and settings.require_sha256 is True


def test_every_field_is_documented() -> None:
    undocumented = [n for n, f in ServingSettings.model_fields.items() if not f.description]
    assert undocumented == []


def test_model_path_accepts_file_uris_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert load_settings(model_uri=f"file://{tmp_path}/m.onnx").model_path() == tmp_path / "m.onnx"
    with pytest.raises(ValueError, match="fetch"):
        load_settings(model_uri="https://example.invalid/m.onnx").model_path()
