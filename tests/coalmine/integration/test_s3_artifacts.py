"""``s3://`` models on the real API server, fetched by the pods' init containers from a real
S3 server (SeaweedFS on loopback): the keys travel as Secret references only, and a canary
whose fetch fails never gets traffic and is rolled back at its progress deadline.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from e2e.devcluster.sandbox import Sandbox
from e2e.devcluster.seaweedfs import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, SeaweedS3
from e2e.devcluster.specs import spec
from e2e.devcluster.tinymodels import ModelArtifacts

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


def test_a_canary_with_wrong_s3_keys_never_gets_traffic_and_is_rolled_back(
    harness: Sandbox, seaweedfs: SeaweedS3, models: ModelArtifacts
) -> None:
    h = harness
    _secret(h, "good-keys", S3_SECRET_KEY)
    _secret(h, "bad-keys", WRONG_SECRET)
    h.apply(spec(_s3_model(h, seaweedfs, models, "v1", "good-keys"), prometheus=h.prometheus.url))
    v1 = h.wait_status(lambda s: s.get("phase") == "Healthy", 90, "v1 to serve")

    bad = spec(_s3_model(h, seaweedfs, models, "v2", "bad-keys"), prometheus=h.prometheus.url)
    bad["canary"]["progressDeadline"] = "15s"
    h.apply(bad)
    done = h.wait_status(
        lambda s: s.get("phase") == "Degraded" and s.get("rollback") is not None, 90, "rollback"
    )

    assert done["stable"]["revision"] == v1["stable"]["revision"]
    assert done["rollback"]["reason"].startswith("ProgressDeadlineExceeded"), done["rollback"]
    canary = done["rollback"]["revision"]
    seen = [s for s in h.recorder.snapshots if s.canary_revision == canary]
    assert seen and not any(s.spans_both or (s.weight or 0) > 0 for s in seen), seen
    # Why, on the pod: the fetch's last line names the reason, and never a key.
    logs = [p.read_text() for p in (h.workdir / "pods").glob("*/fetch-model.log")]
    denied = [log for log in logs if "ArtifactAccessDenied" in log]
    assert denied, logs
    assert f"error: ArtifactAccessDenied: s3://{h.ns}/iris/v2/" in denied[0]
    assert not any(WRONG_SECRET in log or S3_SECRET_KEY in log for log in logs)
    assert WRONG_SECRET not in _everything_written(h)
