"""The operator's rendered ``coalmine-serve`` command, run as a real process with a hostile
environment: ``COALMINE_SERVING_*`` variables (what a ModelDeployment's ``spec.runtime.env``
could set before the CRD refused them) never turn on what the operator's settings forbid."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from coalmine import manifests
from coalmine.api import ModelDeploymentSpec, RevisionRef
from coalmine.policy import refusals
from coalmine.settings import OperatorSettings
from tests.coalmine_serving import models

TREE = "sklearn.tree._tree.Tree"


class _WritesMarker:
    """A pickle whose loading creates a file: proof that code from the artifact ran. It
    names only ``builtins.open``, so the server process needs none of the test's modules."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def _spec(fmt: str) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {"model": {"name": "iris", "version": "v1", "uri": f"file:///m.{fmt}", "format": fmt}}
    )


def _run_rendered(
    artifact: models.Artifact, settings: OperatorSettings, env: dict[str, str], tmp: Path
) -> subprocess.CompletedProcess[str]:
    """The server container's args as the operator renders them, the artifact path swapped
    for the test's file; the hostile variables added to the environment."""
    spec = _spec(artifact.fmt)
    revision = RevisionRef(
        revision="r1", version="v1", uri=f"file://{artifact.path}", format=artifact.fmt,
        sha256=artifact.sha256,
    )  # fmt: skip
    args = manifests.server_args(spec, "stable", revision, settings)
    args[args.index("--model-uri") + 1] = str(artifact.path)
    args[args.index("--receipt-keys-file") + 1] = str(tmp / "keys.json")
    args[args.index("--port") + 1] = str(models.free_port())
    return subprocess.run(
        [sys.executable, "-m", "coalmine_serving.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_env_cannot_turn_on_pickle_the_operator_forbids(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    artifact = models.joblib_artifact(tmp_path, _WritesMarker(marker))
    hostile = {"COALMINE_SERVING_ALLOW_PICKLE": "true"}
    forbids = OperatorSettings(allow_pickle=False)
    # The operator refuses such a spec outright; the flags are the line behind it.
    assert refusals(_spec("joblib"), forbids)[0].startswith("spec.model.format: joblib")

    refused = _run_rendered(artifact, forbids, hostile, tmp_path)

    assert refused.returncode == 2, refused.stderr
    assert "joblib needs allow_pickle=true" in refused.stderr
    assert not marker.exists()

    # The same command under allowPickle does load the pickle: the check above can fail.
    allowed = _run_rendered(artifact, OperatorSettings(allow_pickle=True), {}, tmp_path)
    assert marker.exists(), allowed.stderr


def test_env_cannot_widen_the_skops_allowlist(tmp_path: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    rows, labels, _ = models.training_data()
    artifact = models.skops_artifact(tmp_path, DecisionTreeClassifier().fit(rows, labels))
    hostile = {"COALMINE_SERVING_SKOPS_TRUSTED_TYPES": TREE}

    refused = _run_rendered(artifact, OperatorSettings(), hostile, tmp_path)

    # Had the env been read, the model would load and the server would run until the timeout.
    assert refused.returncode == 2, refused.stderr
    assert TREE in refused.stderr
