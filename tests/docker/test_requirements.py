"""docker/requirements.py: what the Dockerfiles' dependency stage installs, from pyproject.toml."""

from __future__ import annotations

import runpy
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = runpy.run_path(str(ROOT / "docker" / "requirements.py"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_base_dependencies_then_each_extra_asked_for() -> None:
    wanted = SCRIPT["requirements"](PYPROJECT, ["onnx", "skops"])
    base = PYPROJECT["project"]["dependencies"]
    assert wanted[: len(base)] == base
    assert any(req.startswith("onnxruntime") for req in wanted[len(base) :])
    assert any(req.startswith("skops") for req in wanted[len(base) :])
    assert not any(req.startswith("joblib") for req in wanted), "joblib was not asked for"


def test_an_unknown_extra_stops_the_build_with_its_name() -> None:
    with pytest.raises(SystemExit, match="onxx"):
        SCRIPT["requirements"](PYPROJECT, ["onxx"])
