"""Snapshot tests of the manifest builders, plus the properties that must never regress.

Regenerate the snapshots after a deliberate change with
``COALMINE_UPDATE_SNAPSHOTS=1 pytest tests/coalmine/manifests`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from coalmine import manifests
from coalmine.api import Feedback, ModelDeploymentSpec, RevisionRef
from coalmine.manifests import Owner, Variant
from coalmine.routing.gatewayapi import http_route, variant_service
from coalmine.routing.replicas import client_service
from coalmine.settings import OperatorSettings

SNAPSHOTS = Path(__file__).parent / "snapshots"
OWNER = Owner(name="iris", namespace="ml", uid="0000-1111")
SHA = "a" * 64
SETTINGS = OperatorSettings(default_serving_image="coalmine/serving:test")


def _spec(**traffic: Any) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {
            "model": {"name": "iris", "version": "v2", "uri": "https://models/iris.onnx",
                      "format": "onnx", "sha256": SHA},
            "runtime": {"replicas": 3, "env": [{"name": "A", "value": "1"}]},
            "traffic": traffic or {"router": "replicas"},
        }
    )  # fmt: skip


REVISION = RevisionRef(
    revision="r2", version="v2", uri="https://models/iris.onnx", format="onnx", sha256=SHA
)


def _check_snapshot(name: str, manifest: dict[str, Any]) -> None:
    path = SNAPSHOTS / f"{name}.yaml"
    text = yaml.safe_dump(manifest, sort_keys=True)
    if os.environ.get("COALMINE_UPDATE_SNAPSHOTS"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


def test_canary_deployment_snapshot():
    # The enum the operator passes must land in the manifest as plain text: yaml.safe_dump
    # refuses anything else.
    built = manifests.deployment(OWNER, _spec(), Variant.CANARY, REVISION, 2, SETTINGS)
    _check_snapshot("deployment-canary", built)


def test_client_service_snapshots():
    _check_snapshot("service-both", client_service(OWNER, _spec(), True))
    _check_snapshot("service-stable", client_service(OWNER, _spec(), False))


def test_http_route_snapshot():
    spec = _spec(router="gatewayAPI", gatewayAPI={"parentRefs": [{"name": "gw"}]})
    _check_snapshot("httproute-30", http_route(OWNER, spec, 30))


def test_pods_meet_pod_security_restricted():
    pod = manifests.deployment(OWNER, _spec(), "stable", REVISION, 1, SETTINGS)["spec"]["template"]
    spec = pod["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"] + spec["initContainers"]:
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    assert {"/tmp", "/models"} <= mounts


def test_server_args_carry_the_metric_identity_and_the_digest():
    args = manifests.server_args(_spec(), "canary", REVISION, SETTINGS)
    flags = dict(zip(args[1::2], args[2::2], strict=False))
    assert flags["--model-name"] == "iris"
    assert flags["--model-version"] == "v2"
    assert flags["--variant"] == "canary"
    assert flags["--sha256"] == SHA
    assert flags["--model-uri"] == "/models/model.onnx"


def test_init_container_fetches_and_verifies_into_the_shared_volume():
    pod = manifests.deployment(OWNER, _spec(), "stable", REVISION, 1, SETTINGS)["spec"]["template"]
    (init,) = pod["spec"]["initContainers"]
    assert init["args"][:5] == ["fetch", "--uri", "https://models/iris.onnx", "--sha256", SHA]
    assert init["args"][5:] == [
        "--dest", "/models", "--filename", "model.onnx", "--max-bytes", str(20 * 1024**3),
    ]  # fmt: skip


def test_models_volume_is_sized_by_the_artifact_cap():
    # The fetch stops at the operator's cap, and the kubelet evicts a pod whose /models grows
    # past sizeLimit: a hostile or broken artifact cannot fill the node's disk.
    settings = SETTINGS.model_copy(update={"max_artifact_bytes": 100 * 1024**2})
    pod = manifests.deployment(OWNER, _spec(), "stable", REVISION, 1, settings)["spec"]["template"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["models"]["emptyDir"] == {"sizeLimit": str(116 * 1024**2)}
    (init,) = pod["spec"]["initContainers"]
    assert init["args"][-2:] == ["--max-bytes", str(100 * 1024**2)]


def test_selector_names_variant_but_not_revision():
    # The selector is immutable; promotion changes the stable Deployment's revision.
    built = manifests.deployment(OWNER, _spec(), "stable", REVISION, 1, SETTINGS)
    assert built["spec"]["selector"]["matchLabels"] == {
        "coalmine.dev/model-deployment": "iris",
        "coalmine.dev/variant": "stable",
    }
    assert built["spec"]["template"]["metadata"]["labels"]["coalmine.dev/revision"] == "r2"


def test_every_child_is_owned_by_the_model_deployment():
    spec = _spec(router="gatewayAPI", gatewayAPI={"parentRefs": [{"name": "gw"}]})
    children = [
        manifests.deployment(OWNER, spec, "canary", REVISION, 1, SETTINGS),
        variant_service(OWNER, spec, "canary"),
        http_route(OWNER, spec, 10),
    ]
    for child in children:
        (ref,) = child["metadata"]["ownerReferences"]
        assert ref["uid"] == OWNER.uid and ref["controller"] is True


def test_pvc_uri_mounts_the_claim_read_only():
    revision = RevisionRef(
        revision="r", version="v", uri="pvc://models/iris/m.onnx", format="onnx", sha256=SHA
    )
    pod = manifests.deployment(OWNER, _spec(), "stable", revision, 1, SETTINGS)["spec"]["template"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["artifact"]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert "file:///mnt/pvc/models/iris/m.onnx" in pod["spec"]["initContainers"][0]["args"]


def test_pickle_needs_the_operator_setting():
    revision = RevisionRef(
        revision="r", version="v", uri="file:///m.joblib", format="joblib", sha256=SHA
    )
    refused = manifests.server_args(_spec(), "stable", revision, SETTINGS)
    allowed = manifests.server_args(
        _spec(), "stable", revision, SETTINGS.model_copy(update={"allow_pickle": True})
    )
    # Refused is said out loud: a missing flag would let COALMINE_SERVING_ALLOW_PICKLE decide.
    assert "--no-allow-pickle" in refused and "--allow-pickle" not in refused
    assert "--allow-pickle" in allowed and "--no-allow-pickle" not in allowed


def _trusted(spec: ModelDeploymentSpec, settings: OperatorSettings) -> str:
    args = manifests.server_args(spec, "stable", REVISION, settings)
    return args[args.index("--skops-trusted-types") + 1]


def test_skops_trust_is_always_explicit_and_only_narrowed_by_the_spec():
    settings = SETTINGS.model_copy(update={"skops_trusted_types": ["a.A", "b.B"]})
    spec = _spec()
    narrowed = spec.model_copy(
        update={"model": spec.model.model_copy(update={"trusted_types": ["b.B", "evil.E"]})}
    )
    # Empty is passed too, so the server's environment can never add a type.
    assert _trusted(spec, SETTINGS) == ""
    assert _trusted(spec, settings) == "a.A,b.B"
    # A type the operator does not trust never reaches the server, even past the policy check.
    assert _trusted(narrowed, settings) == "b.B"


@pytest.mark.parametrize("replicas", [1, 1000])
def test_replicas_are_capped_by_the_operator_limit(replicas: int):
    built = manifests.deployment(OWNER, _spec(), "stable", REVISION, replicas, SETTINGS)
    assert built["spec"]["replicas"] == min(replicas, SETTINGS.max_replicas)


# Volume types Pod Security "restricted" admits (everything else, hostPath first, is refused).
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}  # fmt: skip


def test_server_gets_the_receipt_keys_revision_and_horizon():
    spec = _spec().model_copy(update={"feedback": Feedback.model_validate({"horizon": "90m"})})
    args = manifests.server_args(spec, "canary", REVISION, SETTINGS)
    flags = dict(zip(args[1::2], args[2::2], strict=False))
    assert flags["--revision"] == "r2"
    assert flags["--receipt-keys-file"] == "/var/run/coalmine/receipts/keys.json"
    assert flags["--feedback-horizon-seconds"] == "5400"
    default = manifests.server_args(_spec(), "canary", REVISION, SETTINGS)
    assert default[default.index("--feedback-horizon-seconds") + 1] == "172800"  # 48h


def test_receipt_keys_are_mounted_read_only_as_a_directory_into_the_server_only():
    pod = manifests.deployment(OWNER, _spec(), "stable", REVISION, 1, SETTINGS)["spec"]["template"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["receipt-keys"] == {
        "name": "receipt-keys",
        "secret": {"secretName": "iris-receipt-keys", "defaultMode": 0o440},
    }
    (server,) = pod["spec"]["containers"]
    (mount,) = [m for m in server["volumeMounts"] if m["name"] == "receipt-keys"]
    # No subPath: only a directory mount sees the kubelet swap in rotated keys.
    assert mount == {"name": "receipt-keys", "mountPath": "/var/run/coalmine/receipts",
                     "readOnly": True}  # fmt: skip
    (init,) = pod["spec"]["initContainers"]
    assert all(m["name"] != "receipt-keys" for m in init["volumeMounts"])


def test_every_volume_is_one_pod_security_restricted_admits():
    revision = REVISION.model_copy(update={"uri": "pvc://models/iris/m.onnx"})
    for built in (REVISION, revision):
        pod = manifests.deployment(OWNER, _spec(), "stable", built, 1, SETTINGS)
        for volume in pod["spec"]["template"]["spec"]["volumes"]:
            assert set(volume) - {"name"} <= RESTRICTED_VOLUMES, volume


def test_the_feedback_horizon_changes_the_pods_but_not_the_revision():
    # A new horizon reaches running pods by a rolling update; it is no new model, so no canary.
    spec = _spec()
    longer = spec.model_copy(update={"feedback": Feedback.model_validate({"horizon": "72h"})})
    assert longer.revision() == spec.revision()
    before = manifests.deployment(OWNER, spec, "stable", REVISION, 1, SETTINGS)
    after = manifests.deployment(OWNER, longer, "stable", REVISION, 1, SETTINGS)
    assert before["spec"]["template"] != after["spec"]["template"]
