"""``s3://`` models on the real API server, fetched by the pods' init containers from a real
S3 server (SeaweedFS on loopback): the keys travel as Secret references only, and a canary
whose fetch fails for good (wrong keys, wrong sha256) never gets traffic and is rolled back as
soon as its pod reports why, well before its progress deadline, with that reason in the
``ArtifactReady`` condition, the rollback and its Events.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from e2e.devcluster.sandbox import Sandbox
from e2e.devcluster.seaweedfs import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, SeaweedS3
from e2e.devcluster.specs import spec
from e2e.devcluster.tinymodels import ModelArtifacts
from tests.coalmine.integration.status_page import plugin_page

pytestmark = pytest.mark.integration

WRONG_SECRET = "wrong-secret-for-the-canary-5b0d"


def _secret(h: Sandbox, name: str, secret_key: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "stringData": {"AWS_ACCESS_KEY_ID": S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": secret_key},
    }
    h.api.post(f"/api/v1/namespaces/{h.ns}/secrets", json=body).raise_for_status()


def _s3_model(
    h: Sandbox, store: SeaweedS3, models: ModelArtifacts, version: str, secret: str
) -> dict[str, Any]:
    model = models.model(version)
    key = f"iris/{version}/{models.good.path.name}"
    store.put(h.ns, key, models.good.path.read_bytes())  # the namespace names the bucket
    model["uri"] = f"s3://{h.ns}/{key}"
    model["s3"] = {"endpoint": store.endpoint, "region": S3_REGION, "credentialsSecret": secret}
    return model


def _everything_written(h: Sandbox) -> str:
    """What the operator and the pods left in the API: the ModelDeployment with its status,
    its Deployments, their pods, and the namespace's Events."""
    pods = h.api.get(f"/api/v1/namespaces/{h.ns}/pods").json()["items"]
    return json.dumps([h.md(), h.deployments(), pods, h.events()])


def test_an_s3_model_is_fetched_with_secret_references_only(
    harness: Sandbox, seaweedfs: SeaweedS3, models: ModelArtifacts
) -> None:
    h = harness
    _secret(h, "iris-s3", S3_SECRET_KEY)
    h.apply(spec(_s3_model(h, seaweedfs, models, "v1", "iris-s3"), prometheus=h.prometheus.url))

    h.wait_status(lambda s: s.get("phase") == "Healthy", 90, "v1 from S3 to serve")

    stable = h.deployment("stable")
    assert stable is not None
    (init,) = stable["spec"]["template"]["spec"]["initContainers"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in init["env"]}
    assert refs["AWS_SECRET_ACCESS_KEY"] == {"name": "iris-s3", "key": "AWS_SECRET_ACCESS_KEY"}
    assert all("value" not in e for e in init["env"])
    assert "--s3-credentials" in init["args"] and seaweedfs.endpoint in init["args"]
    assert S3_SECRET_KEY not in _everything_written(h)
    # The stand-in ran the init container for real: each pod loaded the bytes from SeaweedFS.
    pods = h.standin.ready_pods()
    assert pods
    for pod in pods:
        fetched = pod.workdir / "volumes" / "models" / f"model.{models.good.fmt}"
        assert fetched.read_bytes() == models.good.path.read_bytes()


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions", []) if c["type"] == kind)


def _canary_rolled_back(h: Sandbox, bad: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Apply ``bad`` over a serving v1; the status once its canary is rolled back, and the
    seconds from the apply to the rollback's start (its Warning and status record)."""
    applied = time.monotonic()
    h.apply(bad)
    h.wait_status(lambda s: s.get("rollback") is not None, 90, "the canary's rollback")
    started = time.monotonic() - applied
    done = h.wait_status(lambda s: s.get("phase") == "Degraded", 90, "the rollback to finish")
    return done, started


def _never_had_weight(h: Sandbox, done: dict[str, Any]) -> None:
    canary = done["rollback"]["revision"]
    seen = [s for s in h.recorder.snapshots if s.canary_revision == canary]
    assert seen and not any(s.spans_both or (s.weight or 0) > 0 for s in seen), seen
    assert done["history"][-1]["outcome"] == "RolledBack"


def test_a_canary_with_wrong_s3_keys_is_rolled_back_at_once_with_the_reason(
    harness: Sandbox, seaweedfs: SeaweedS3, models: ModelArtifacts
) -> None:
    h = harness
    _secret(h, "good-keys", S3_SECRET_KEY)
    _secret(h, "bad-keys", WRONG_SECRET)
    h.apply(spec(_s3_model(h, seaweedfs, models, "v1", "good-keys"), prometheus=h.prometheus.url))
    v1 = h.wait_status(lambda s: s.get("phase") == "Healthy", 90, "v1 to serve")

    bad = spec(_s3_model(h, seaweedfs, models, "v2", "bad-keys"), prometheus=h.prometheus.url)
    bad["canary"]["progressDeadline"] = "300s"  # the old way out; the rollback must not wait
    done, seconds = _canary_rolled_back(h, bad)
    print(f"wrong keys: apply -> rollback started in {seconds:.1f}s (progressDeadline 300s)")

    assert seconds < 60, seconds
    assert done["stable"]["revision"] == v1["stable"]["revision"]
    reason = done["rollback"]["reason"]
    assert reason.startswith("ArtifactAccessDenied: model fetch failed: "), reason
    assert f"s3://{h.ns}/iris/v2/" in reason
    artifact = _condition(done, "ArtifactReady")
    assert (artifact["status"], artifact["reason"]) == ("False", "ArtifactAccessDenied")
    assert artifact["observedGeneration"] == h.md()["metadata"]["generation"]
    assert _condition(done, "RolledBack")["reason"] == "ArtifactAccessDenied"
    _never_had_weight(h, done)
    warnings = [e for e in h.events_with("RolledBack") if e["reason"] == "RolledBack"]
    assert any("ArtifactAccessDenied" in e["message"] for e in warnings), warnings
    # The operator read that from the pod's status (the canary's pods are gone by now): the
    # stand-in reported the fetch's output as a kubelet does, and the output holds no key.
    logs = [p.read_text() for p in (h.workdir / "pods").glob("*/fetch-model.log")]
    assert any(f"error: ArtifactAccessDenied: s3://{h.ns}/iris/v2/" in log for log in logs), logs
    assert not any(WRONG_SECRET in log or S3_SECRET_KEY in log for log in logs)
    page = plugin_page("status", "iris", h.ns, h.plane.kubeconfig)
    assert "ArtifactReady" in page and "ArtifactAccessDenied" in page, page
    assert WRONG_SECRET not in page and S3_SECRET_KEY not in page
    assert WRONG_SECRET not in _everything_written(h)
    assert S3_SECRET_KEY not in _everything_written(h)


def test_a_canary_whose_s3_object_fails_its_sha256_is_rolled_back_at_once(
    harness: Sandbox, seaweedfs: SeaweedS3, models: ModelArtifacts
) -> None:
    h = harness
    _secret(h, "good-keys", S3_SECRET_KEY)
    h.apply(spec(_s3_model(h, seaweedfs, models, "v1", "good-keys"), prometheus=h.prometheus.url))
    h.wait_status(lambda s: s.get("phase") == "Healthy", 90, "v1 to serve")

    model = _s3_model(h, seaweedfs, models, "v2", "good-keys")
    model["sha256"] = "0" * 64  # pinned to other bytes than the bucket holds
    bad = spec(model, prometheus=h.prometheus.url)
    bad["canary"]["progressDeadline"] = "300s"
    done, seconds = _canary_rolled_back(h, bad)
    print(f"checksum mismatch: apply -> rollback started in {seconds:.1f}s")

    assert seconds < 60, seconds
    assert done["rollback"]["reason"].startswith("ArtifactChecksumMismatch: "), done["rollback"]
    artifact = _condition(done, "ArtifactReady")
    assert (artifact["status"], artifact["reason"]) == ("False", "ArtifactChecksumMismatch")
    _never_had_weight(h, done)
    assert S3_SECRET_KEY not in _everything_written(h)
