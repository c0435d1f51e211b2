"""The operator on a real API server, with real Prometheus and real model servers.

The kubelet is a stand-in (see kubelet_standin.py); everything else is the real thing.
"""

from __future__ import annotations

import pytest

from tests.coalmine.integration.harness import Harness
from tests.coalmine.integration.models import ModelArtifacts
from tests.coalmine.integration.specs import spec

pytestmark = pytest.mark.integration


def _deploy_v1(h: Harness, models: ModelArtifacts) -> dict:
    h.apply(spec(models.model("v1"), prometheus=h.prometheus.url))
    status = h.wait_status(lambda s: s.get("phase") == "Healthy", 90, "v1 to serve")
    h.start_traffic()
    return status


def test_good_version_promotes_through_every_step(harness: Harness, models: ModelArtifacts):
    h = harness
    v1 = _deploy_v1(h, models)
    h.apply(spec(models.model("v2"), prometheus=h.prometheus.url))
    done = h.wait_status(
        lambda s: s.get("phase") == "Healthy" and s.get("stable", {}).get("version") == "v2",
        120,
        "v2 to be promoted",
    )
    assert done["stable"]["revision"] != v1["stable"]["revision"]
    steps_seen = {s.step for s in h.recorder.snapshots if s.phase == "Progressing"}
    assert {0, 1} <= steps_seen
    stable = h.deployment("stable")
    assert stable is not None
    assert stable["metadata"]["labels"]["coalmine.dev/version"] == "v2"
    reasons = [e["reason"] for e in h.events()]
    assert "Promoted" in reasons or any("Promot" in r for r in reasons), reasons
    assert h.traffic is not None and h.traffic.sent["canary"] > 0
    # No duplicate children: exactly the two Deployments.
    assert sorted(d["metadata"]["name"] for d in h.deployments()) == ["iris-canary", "iris-stable"]
