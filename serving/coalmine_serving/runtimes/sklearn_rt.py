"""scikit-learn estimators loaded from skops (safe allow-list) or joblib (pickle, opt-in)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from coalmine_serving.errors import ArtifactError
from coalmine_serving.runtimes.base import Signature, resolve_task
from coalmine_serving.settings import Task


class SklearnRuntime:
    """Wraps any object with ``predict``; output is flattened to one value per row."""

    def __init__(self, estimator: Any, fmt: str, task: Task) -> None:
        if not callable(getattr(estimator, "predict", None)):
            raise ArtifactError(
                f"the {fmt} artifact holds {type(estimator).__name__}, no predict()"
            )
        self._estimator = estimator
        self.format = fmt
        n_features = getattr(estimator, "n_features_in_", None)
        self.signature = Signature(
            input_name="input-0",
            n_features=int(n_features) if n_features is not None else None,
            dtype=np.dtype(np.float64),
            output_name="predict",
            task=resolve_task(task, hasattr(estimator, "classes_")),
        )

    def predict(self, rows: np.ndarray) -> np.ndarray:
        out = np.asarray(self._estimator.predict(rows))
        # Single-target regressors sometimes return (n, 1); the metrics want one value per row.
        return out.reshape(len(rows)) if out.ndim == 2 and out.shape[1] == 1 else out


def load_skops(path: Path, trusted_types: list[str], task: Task) -> SklearnRuntime:
    """Load with skops, trusting only skops' defaults plus types named in our settings.

    The artifact's own idea of what is safe is never consulted: a crafted file could name
    dangerous types (MLflow #25686).
    """
    import skops.io as sio

    untrusted = set(sio.get_untrusted_types(file=path)) - set(trusted_types)
    if untrusted:
        raise ArtifactError(
            "skops artifact contains types that are not trusted: "
            f"{sorted(untrusted)}; audit them and add them to skops_trusted_types if safe"
        )
    estimator = sio.load(path, trusted=list(trusted_types) or None)
    return SklearnRuntime(estimator, "skops", task)


def load_joblib(path: Path, allow_pickle: bool, task: Task) -> SklearnRuntime:
    """Load a pickle-based joblib file, only when pickle was explicitly allowed."""
    if not allow_pickle:
        raise ArtifactError(
            "refusing to load a joblib artifact: it is a pickle, and loading a pickle runs "
            "arbitrary code from the file. Convert the model to onnx or skops, or set "
            "allow_pickle=true if you trust everyone who can write the artifact"
        )
    import joblib

    return SklearnRuntime(joblib.load(path), "joblib", task)
