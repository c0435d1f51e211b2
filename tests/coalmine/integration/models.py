"""Tiny scikit-learn models made in the test and saved with skops: a good one and one whose
predictions are wrong, for the quality scenario."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.coalmine_serving.models import Artifact, classifier, skops_artifact, training_data


@dataclass(frozen=True)
class ModelArtifacts:
    good: Artifact
    inverted: Artifact
    """Trained on flipped labels: confidently wrong, with normal latency and no errors."""

    def model(self, version: str, artifact: Artifact | None = None) -> dict[str, Any]:
        chosen = artifact or self.good
        return {
            "name": "iris",
            "version": version,
            "uri": f"file://{chosen.path}",
            "format": "skops",
            "sha256": chosen.sha256,
        }


def make_models(directory: Path) -> ModelArtifacts:
    from sklearn.linear_model import LogisticRegression

    rows, labels, _ = training_data()
    inverted = LogisticRegression(C=100.0).fit(rows, 1 - labels)
    return ModelArtifacts(
        good=skops_artifact(directory, classifier(), "good.skops"),
        inverted=skops_artifact(directory, inverted, "inverted.skops"),
    )
