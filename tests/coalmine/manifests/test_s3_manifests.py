"""How an ``s3://`` model reaches the init container: flags for the endpoint and region,
Secret references (never values) for the keys, and the pod's own identity without a Secret."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coalmine import manifests
from coalmine.api import ModelDeploymentSpec, RevisionRef
from coalmine.api.validate import check_manifest
from coalmine.manifests import Owner, Variant
from coalmine.manifests.template import spec_for_record, template_record
from coalmine.settings import OperatorSettings

OWNER = Owner(name="fraud", namespace="ml", uid="0000-1111")
SHA = "b" * 64
URI = "s3://models/fraud/v2/model.onnx"
SETTINGS = OperatorSettings(default_serving_image="coalmine/serving:test")


def _spec(s3: dict[str, Any] | None) -> ModelDeploymentSpec:
    model = {"name": "fraud", "version": "v2", "uri": URI, "format": "onnx", "sha256": SHA}
    if s3 is not None:
        model["s3"] = s3
    return ModelDeploymentSpec.model_validate({"model": model})


def _pod(spec: ModelDeploymentSpec) -> dict[str, Any]:
    revision = RevisionRef(
        revision=spec.revision(), version="v2", uri=URI, format="onnx", sha256=SHA
    )
    built = manifests.deployment(OWNER, spec, Variant.CANARY, revision, 1, SETTINGS)
    return built["spec"]["template"]["spec"]


def _flags(args: list[str]) -> dict[str, str]:
    return dict(zip(args[::2], args[1::2], strict=True))


def test_a_named_secret_becomes_secret_key_refs_in_the_init_container_only() -> None:
    s3 = {"endpoint": "https://minio.storage:9000/", "region": "eu-west-1",
          "credentialsSecret": "fraud-s3"}  # fmt: skip
    pod = _pod(_spec(s3))
    (init,) = pod["initContainers"]
    flags = _flags(init["args"][1:])
    assert flags["--uri"] == URI
    assert flags["--s3-endpoint"] == "https://minio.storage:9000"
    assert flags["--s3-region"] == "eu-west-1"
    assert flags["--s3-credentials"] == "env"
    assert init["env"] == [
        {"name": "AWS_ACCESS_KEY_ID",
         "valueFrom": {"secretKeyRef": {"name": "fraud-s3", "key": "AWS_ACCESS_KEY_ID"}}},
        {"name": "AWS_SECRET_ACCESS_KEY",
         "valueFrom": {"secretKeyRef": {"name": "fraud-s3", "key": "AWS_SECRET_ACCESS_KEY"}}},
        {"name": "AWS_SESSION_TOKEN",
         "valueFrom": {"secretKeyRef": {"name": "fraud-s3", "key": "AWS_SESSION_TOKEN",
                                        "optional": True}}},
    ]  # fmt: skip
    assert all("value" not in env for env in init["env"])
    (server,) = pod["containers"]
    assert "fraud-s3" not in json.dumps(server)  # the model's process never gets the keys
    assert "fraud-s3" not in json.dumps(pod["volumes"])


def test_without_a_secret_the_pod_uses_its_own_identity() -> None:
    pod = _pod(_spec(None))
    (init,) = pod["initContainers"]
    assert _flags(init["args"][1:])["--s3-credentials"] == "identity"
    assert "--s3-endpoint" not in init["args"]  # the fetch's default: AWS S3
    assert "env" not in init


def test_the_reason_of_a_failed_fetch_becomes_its_termination_message() -> None:
    (init,) = _pod(_spec(None))["initContainers"]
    assert init["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_an_https_model_gets_no_s3_flags() -> None:
    spec = ModelDeploymentSpec.model_validate(
        {"model": {"name": "fraud", "version": "v2", "uri": "https://h/m.onnx",
                   "format": "onnx", "sha256": SHA}}
    )  # fmt: skip
    revision = RevisionRef(revision="r", version="v2", uri="https://h/m.onnx", sha256=SHA)
    built = manifests.deployment(OWNER, spec, Variant.CANARY, revision, 1, SETTINGS)
    (init,) = built["spec"]["template"]["spec"]["initContainers"]
    assert not any(arg.startswith("--s3") for arg in init["args"])


def test_s3_settings_are_part_of_the_revision_and_of_its_record() -> None:
    # Another Secret or endpoint is another way to get the bytes: a new revision, and an
    # older revision's pods are rebuilt with the settings they were built with.
    old = _spec({"credentialsSecret": "old-keys"})
    new = _spec({"credentialsSecret": "new-keys"})
    assert old.revision() != new.revision()
    rebuilt = spec_for_record(new, template_record(old))
    assert rebuilt.model.s3 == old.model.s3
    assert spec_for_record(new, template_record(_spec(None))).model.s3 is None


def test_a_record_without_s3_stays_byte_for_byte_the_same() -> None:
    # Deployments built before s3 support keep their annotation: no needless re-apply.
    assert '"s3"' not in template_record(_spec(None))


@pytest.mark.parametrize(
    ("s3", "field"),
    [
        ({"endpoint": "https://h/path"}, "spec.model.s3.endpoint"),
        ({"endpoint": "https://u:p@h"}, "spec.model.s3.endpoint"),
        ({"region": "EU West"}, "spec.model.s3.region"),
        ({"credentialsSecret": "Not_A_Name"}, "spec.model.s3.credentialsSecret"),
        ({"accessKey": "AKIA"}, "spec.model.s3"),  # keys never go in the spec
    ],
)
def test_bad_s3_settings_are_refused_naming_the_field(s3: dict[str, Any], field: str) -> None:
    manifest = {
        "apiVersion": "coalmine.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "fraud"},
        "spec": {
            "model": {"name": "fraud", "version": "v2", "uri": URI, "format": "onnx",
                      "sha256": SHA, "s3": s3},
            "canary": {"steps": [{"weight": 10}]},
        },
    }  # fmt: skip
    problems = "\n".join(str(p) for p in check_manifest(manifest, "m.yaml"))
    assert field in problems
