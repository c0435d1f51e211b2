from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from coalmine_serving.errors import ArtifactError
from coalmine_serving.runtimes import load_runtime
from coalmine_serving.settings import Task, load_settings
from tests.coalmine_serving import models
from tests.coalmine_serving.models import Artifact

ROWS = np.array([[0.9, 0.1, 0.1, 0.1], [0.1, 0.9, 0.1, 0.1]])


def _load(artifact: Artifact, **extra: object):  # type: ignore[no-untyped-def]
    settings = load_settings(
        model_uri=str(artifact.path), model_format=artifact.fmt, sha256=artifact.sha256, **extra
    )
    return load_runtime(settings)


@pytest.mark.parametrize("kind", ["skops_clf", "onnx_clf"])
def test_classifiers_predict_like_the_fitted_estimator(artifacts, kind) -> None:  # type: ignore[no-untyped-def]
    loaded = _load(artifacts[kind])
    sig = loaded.runtime.signature
    assert sig.task is Task.CLASSIFICATION and sig.n_features == 4
    assert loaded.runtime.predict(ROWS.astype(sig.dtype)).tolist() == [1, 0]
    assert loaded.sha256 == artifacts[kind].sha256


@pytest.mark.parametrize("kind", ["skops_reg", "onnx_reg"])
def test_regressors_return_one_value_per_row(artifacts, kind) -> None:  # type: ignore[no-untyped-def]
    loaded = _load(artifacts[kind])
    out = loaded.runtime.predict(ROWS.astype(loaded.runtime.signature.dtype))
    assert loaded.runtime.signature.task is Task.REGRESSION
    assert out.shape == (2,)
    np.testing.assert_allclose(out, [1.9, 1.1], atol=1e-4)


def test_sha256_mismatch_refuses_before_deserialising(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    artifact = models.joblib_artifact(tmp_path, _Exploit(marker))
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        _load(Artifact(artifact.path, "0" * 64, "joblib"), allow_pickle=True)
    assert not marker.exists()


def test_missing_sha256_is_refused_unless_explicitly_allowed(artifacts) -> None:  # type: ignore[no-untyped-def]
    art = artifacts["onnx_clf"]
    with pytest.raises(ArtifactError, match="no sha256"):
        load_runtime(load_settings(model_uri=str(art.path), model_format="onnx"))
    loaded = load_runtime(
        load_settings(model_uri=str(art.path), model_format="onnx", require_sha256=False)
    )
    assert loaded.sha256 == art.sha256


def test_pickle_refused_without_allow_pickle_and_never_executed(tmp_path: Path) -> None:
    from coalmine_serving.runtimes.sklearn_rt import load_joblib

    marker = tmp_path / "pwned"
    artifact = models.joblib_artifact(tmp_path, _Exploit(marker))
    with pytest.raises(ArtifactError, match="arbitrary code"):
        load_joblib(artifact.path, allow_pickle=False, task=Task.AUTO)
    assert not marker.exists()


def test_joblib_loads_when_pickle_is_allowed(artifacts) -> None:  # type: ignore[no-untyped-def]
    loaded = _load(artifacts["joblib_clf"], allow_pickle=True)
    assert loaded.runtime.predict(ROWS).tolist() == [1, 0]


def test_skops_untrusted_types_need_settings_not_the_artifact(tmp_path: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    rows, labels, _ = models.training_data()
    artifact = models.skops_artifact(tmp_path, DecisionTreeClassifier().fit(rows, labels))
    with pytest.raises(ArtifactError, match=r"sklearn\.tree\._tree\.Tree"):
        _load(artifact)
    trusted = "sklearn.tree._tree.Tree"
    assert _load(artifact, skops_trusted_types=[trusted]).runtime.predict(ROWS).tolist() == [1, 0]


def test_onnx_garbage_is_an_artifact_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ArtifactError, match="onnxruntime cannot load"):
        _load(models._artifact(bad, "onnx"))


def test_explicit_task_wins_over_the_artifact(artifacts) -> None:  # type: ignore[no-untyped-def]
    loaded = _load(artifacts["onnx_clf"], task="regression")
    assert loaded.runtime.signature.task is Task.REGRESSION


class _Exploit:
    """A pickle that writes a marker file when loaded: proof of code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.write_text, (self.marker, "executed"))
