from __future__ import annotations

from typing import Any

import pytest

from coalmine_serving import cli
from coalmine_serving.settings import ServingSettings


def test_every_setting_is_a_flag_with_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    text = capsys.readouterr().out
    for name in ServingSettings.model_fields:
        assert "--" + name.replace("_", "-") in text


def test_flags_override_environment_and_serve_is_the_default(
    monkeypatch: pytest.MonkeyPatch, artifacts
) -> None:  # type: ignore[no-untyped-def]
    art = artifacts["onnx_clf"]
    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli, "run", lambda settings, model: seen.update(s=settings, m=model))
    monkeypatch.setenv("COALMINE_SERVING_MODEL_NAME", "from-env")
    monkeypatch.setenv("COALMINE_SERVING_VARIANT", "canary")
    code = cli.main(
        ["--model-name", "iris", "--model-uri", str(art.path), "--sha256", art.sha256,
         "--no-require-sha256", "--max-rows", "7"]
    )  # fmt: skip
    assert code == 0
    settings = seen["s"]
    assert (settings.model_name, settings.variant.value) == ("iris", "canary")
    assert settings.max_rows == 7 and settings.require_sha256 is False
    assert seen["m"].sha256 == art.sha256  # loaded and verified before serving


def test_invalid_settings_exit_2_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--model-format", "joblib"]) == 2
    assert "allow_pickle" in capsys.readouterr().err
