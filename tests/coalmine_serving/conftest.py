from __future__ import annotations

from pathlib import Path

import pytest

from tests.coalmine_serving import models


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, models.Artifact]:
    """One of each kind of artifact, built once per session."""
    tmp: Path = tmp_path_factory.mktemp("artifacts")
    clf, reg = models.classifier(), models.regressor()
    return {
        "skops_clf": models.skops_artifact(tmp, clf, "clf.skops"),
        "skops_reg": models.skops_artifact(tmp, reg, "reg.skops"),
        "onnx_clf": models.onnx_artifact(tmp, clf, "clf.onnx"),
        "onnx_reg": models.onnx_artifact(tmp, reg, "reg.onnx"),
        "joblib_clf": models.joblib_artifact(tmp, clf, "clf.joblib"),
    }
