"""Tiny scikit-learn models made on the spot (never downloaded), saved with skops and pinned
by sha256: a good classifier, one whose predictions are wrong (the quality scenario) and one
whose predicted classes shift (the drift scenario).

They fit in milliseconds on synthetic data whose ground truth is ``x0 > 0.5``, the rule the
traffic generator's feedback uses (``e2e.devcluster.traffic.truth_of``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

N_FEATURES = 4


@dataclass(frozen=True)
class Artifact:
    path: Path
    sha256: str
    fmt: str


@dataclass(frozen=True)
class ModelArtifacts:
    good: Artifact
    inverted: Artifact
    """Trained on flipped labels: confidently wrong, with normal latency and no errors."""
    shifted: Artifact
    """Trained on ``x0 > 0.2``: predicts class 1 for about 80% of rows where the good model
    predicts it for 50%, so its output distribution drifts (and a third of its 1s are wrong)."""

    def model(
        self, version: str, artifact: Artifact | None = None, base_url: str | None = None
    ) -> dict[str, Any]:
        """The ``spec.model`` of a ModelDeployment serving ``artifact`` as ``version``: by path
        (``file://``, the stand-in's pods share this machine's files) or from ``base_url``
        (an HTTP server holding this directory, for real pods)."""
        chosen = artifact or self.good
        uri = f"{base_url}/{chosen.path.name}" if base_url else f"file://{chosen.path}"
        return {
            "name": "iris",
            "version": version,
            "uri": uri,
            "format": chosen.fmt,
            "sha256": chosen.sha256,
        }


def make_models(directory: Path) -> ModelArtifacts:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rows = np.random.default_rng(0).random((80, N_FEATURES))
    labels = (rows[:, 0] > 0.5).astype(np.int64)
    directory.mkdir(parents=True, exist_ok=True)
    good = LogisticRegression(C=100.0).fit(rows, labels)
    inverted = LogisticRegression(C=100.0).fit(rows, 1 - labels)
    shifted = LogisticRegression(C=100.0).fit(rows, (rows[:, 0] > 0.2).astype(np.int64))
    return ModelArtifacts(
        good=_skops(directory / "good.skops", good),
        inverted=_skops(directory / "inverted.skops", inverted),
        shifted=_skops(directory / "shifted.skops", shifted),
    )


def _skops(path: Path, estimator: object) -> Artifact:
    import skops.io as sio

    sio.dump(estimator, path)
    return Artifact(path, hashlib.sha256(path.read_bytes()).hexdigest(), "skops")
