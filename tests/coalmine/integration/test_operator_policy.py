"""The operator as the last line of the policy: a spec the API server admitted (no admission
policy installed here, as with ``admissionPolicy.enabled: false`` or an object from before a
setting was narrowed) but that exceeds the operator's settings changes no pod, and says why."""

from __future__ import annotations

import time

import pytest

from e2e.devcluster.sandbox import Sandbox
from e2e.devcluster.specs import spec
from e2e.devcluster.tinymodels import ModelArtifacts

pytestmark = pytest.mark.integration


def _ready(status: dict) -> dict:  # type: ignore[type-arg]
    return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})


def test_an_image_outside_the_allowlist_changes_no_pod(harness: Sandbox, models: ModelArtifacts):
    h = harness
    h.apply(spec(models.model("v1"), prometheus=h.prometheus.url))
    v1 = h.wait_status(lambda s: s.get("phase") == "Healthy", 90, "v1 to serve")
    before = {d["metadata"]["name"]: d["metadata"]["labels"] for d in h.deployments()}

    hostile = spec(models.model("v2"), prometheus=h.prometheus.url)
    hostile["runtime"]["image"] = "evil.example/serving:1"
    h.apply(hostile)
    refused = h.wait_status(
        lambda s: _ready(s).get("reason") == "InvalidSpec", 30, "the spec to be refused"
    )
    time.sleep(2)  # four more ticks of the operator: still nothing may change

    assert _ready(refused)["message"] == (
        "spec.runtime.image: evil.example/serving:1 is not the operator's defaultServingImage "
        "and matches no entry of its allowedImages"
    )
    after = {d["metadata"]["name"]: d["metadata"]["labels"] for d in h.deployments()}
    assert after == before, "a Deployment was created or changed"
    assert h.md()["status"]["stable"]["revision"] == v1["stable"]["revision"]
    assert "canary" not in h.md()["status"]

    # Fixed, the rollout goes on: the refusal holds nothing back but the hostile spec.
    h.apply(spec(models.model("v2"), prometheus=h.prometheus.url))
    h.wait_status(lambda s: s.get("canary", {}).get("version") == "v2", 60, "the fixed v2 to start")
