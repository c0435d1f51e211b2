"""The receipt-key Secret on a real API server, with the operator under its own RBAC: a
Secret of that name that is not ours is left alone and holds the rollout; ours is owned by the
ModelDeployment, reaches every pod as a file, survives ticks unchanged and rotates on
``kubectl coalmine rotate-keys``."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from e2e.devcluster import REPO_ROOT
from e2e.devcluster.sandbox import Sandbox, wait_for
from e2e.devcluster.specs import spec
from e2e.devcluster.tinymodels import ModelArtifacts

pytestmark = pytest.mark.integration

SECRET = "iris-receipt-keys"


def _secret(h: Sandbox) -> dict[str, Any] | None:
    response = h.api.get(f"/api/v1/namespaces/{h.ns}/secrets/{SECRET}")
    return response.json() if response.status_code == 200 else None


def _keys(secret: dict[str, Any]) -> list[dict[str, str]]:
    keys: list[dict[str, str]] = json.loads(base64.b64decode(secret["data"]["keys.json"]))["keys"]
    return keys


def _keys_condition(status: dict[str, Any]) -> dict[str, Any]:
    found = [c for c in status.get("conditions", []) if c["type"] == "ReceiptKeys"]
    return found[0] if found else {}


def _server_flags(h: Sandbox, variant: str) -> dict[str, str]:
    deployment = h.deployment(variant)
    assert deployment is not None
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return dict(zip(args[1::2], args[2::2], strict=False))


def _rolled_out(h: Sandbox, variant: str) -> bool:
    found = h.deployment(variant) or {}
    status, replicas = found.get("status", {}), found.get("spec", {}).get("replicas")
    return (
        status.get("observedGeneration", 0) >= found["metadata"]["generation"]
        and status.get("updatedReplicas") == replicas == status.get("readyReplicas")
        and status.get("replicas") == replicas  # the old pods are gone
    )


def _pod_key_files(h: Sandbox) -> list[list[dict[str, str]]]:
    """keys.json as each ready pod's server reads it."""
    files = [
        pod.workdir / "volumes" / "receipt-keys" / "keys.json" for pod in h.standin.ready_pods()
    ]
    return [json.loads(file.read_text())["keys"] for file in files]


def _rotate_keys(h: Sandbox) -> None:
    plugin = Path(sys.executable).parent / "kubectl-coalmine"
    result = subprocess.run(
        [str(plugin), "rotate-keys", "iris", "-n", h.ns, "--kubeconfig", str(h.plane.kubeconfig)],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rotate-keys requested" in result.stdout


def _hold_on_a_foreign_secret(h: Sandbox, v1: dict[str, Any]) -> None:
    foreign = {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET},
        "stringData": {"keys.json": '{"keys": []}', "note": "a person's own Secret"},
    }  # fmt: skip
    h.api.post(f"/api/v1/namespaces/{h.ns}/secrets", json=foreign).raise_for_status()
    before = _secret(h)
    h.apply(v1)

    held = h.wait_status(
        lambda s: _keys_condition(s).get("reason") == "ReceiptKeysConflict", 60, "the conflict"
    )
    assert _keys_condition(held)["status"] == "False"
    assert "not owned by this ModelDeployment" in held["message"]
    wait_for(
        lambda: [e for e in h.events() if e["reason"] == "ReceiptKeysConflict"], 30, "its Event"
    )
    time.sleep(2)  # a few more ticks (0.5 s each): still nothing is touched
    assert h.deployments() == [], "no pod may be started while the keys are not ours"
    after = _secret(h)
    assert after is not None and before is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["data"] == before["data"] and not after["metadata"].get("ownerReferences")
    (warning,) = [e for e in h.events() if e["reason"] == "ReceiptKeysConflict"]
    assert warning["type"] == "Warning"


def test_receipt_keys_are_owned_mounted_kept_and_rotated(
    harness: Sandbox, models: ModelArtifacts
) -> None:
    h = harness
    v1 = spec(models.model("v1"), prometheus=h.prometheus.url)
    _hold_on_a_foreign_secret(h, v1)

    # The person removes their Secret: the operator makes ours, then the pods.
    h.api.delete(f"/api/v1/namespaces/{h.ns}/secrets/{SECRET}").raise_for_status()
    serving = h.wait_status(lambda s: s.get("phase") == "Healthy", 90, "v1 to serve")
    assert _keys_condition(serving)["status"] == "True"
    secret = _secret(h)
    assert secret is not None
    (owner,) = secret["metadata"]["ownerReferences"]
    assert owner["uid"] == h.md()["metadata"]["uid"] and owner["controller"] is True
    assert secret["metadata"]["labels"]["coalmine.dev/model-deployment"] == "iris"
    (key,) = _keys(secret)
    flags = _server_flags(h, "stable")
    assert flags["--revision"] == serving["stable"]["revision"]
    assert flags["--receipt-keys-file"] == "/var/run/coalmine/receipts/keys.json"
    assert flags["--feedback-horizon-seconds"] == "172800"
    assert _pod_key_files(h) == [[key]] * 2  # both pods read the Secret's keys

    # Ticks (a spec change, the pods rolled for the new horizon) leave the keys as they are.
    version = secret["metadata"]["resourceVersion"]
    h.apply({**v1, "feedback": {"horizon": "1h"}})
    wait_for(
        lambda: (
            _server_flags(h, "stable")["--feedback-horizon-seconds"] == "3600"
            and _rolled_out(h, "stable")
        ),
        90,
        "the stable pods to roll for the new horizon",
    )
    assert h.status()["stable"]["revision"] == serving["stable"]["revision"]  # no canary
    kept = _secret(h)
    assert kept is not None and kept["metadata"]["resourceVersion"] == version

    # A person rotates: a second key, signing only after the activation delay.
    asked = datetime.now(UTC)
    _rotate_keys(h)
    rotated = wait_for(lambda: (s := _secret(h)) and len(_keys(s)) == 2 and s, 30, "a new key")
    old, new = _keys(rotated)
    assert old == key
    active = datetime.fromisoformat(new["activeFrom"].replace("Z", "+00:00"))
    assert asked + timedelta(seconds=100) < active < asked + timedelta(seconds=150)
    wait_for(
        lambda: "coalmine.dev/rotate-keys" not in h.md()["metadata"].get("annotations", {}),
        30,
        "the request to be consumed",
    )
    assert [e for e in h.events() if e["reason"] == "ReceiptKeyAdded"]
    # The running pods get the new key without a restart, as a kubelet refreshes Secrets.
    wait_for(lambda: _pod_key_files(h) == [[old, new]] * 2, 30, "the pods to have both keys")
