"""Scenario 8: a person with only the documented role (examples/rbac-user.yaml) drives every
``kubectl coalmine`` control, and the operator (under its own least-privilege account) acts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from e2e.devcluster import REPO_ROOT
from e2e.devcluster.sandbox import Sandbox
from e2e.devcluster.specs import spec
from e2e.devcluster.tinymodels import ModelArtifacts

pytestmark = pytest.mark.integration

USER_ROLE = REPO_ROOT / "examples" / "rbac-user.yaml"
SLOW_STEPS = [{"weight": 20, "pause": "10m"}, {"weight": 50, "pause": "10m"}]


def _grant_user(h: Sandbox) -> Path:
    role = yaml.safe_load(USER_ROLE.read_text())
    role["metadata"]["name"] = f"coalmine-user-{h.ns}"
    h.api.post("/apis/rbac.authorization.k8s.io/v1/clusterroles", json=role).raise_for_status()
    kubeconfig = h.plane.kubeconfig_for_service_account(h.ns, "ann")
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "ann-drives-rollouts", "namespace": h.ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": role["metadata"]["name"]},
        "subjects": [{"kind": "ServiceAccount", "name": "ann", "namespace": h.ns}],
    }  # fmt: skip
    h.api.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{h.ns}/rolebindings", json=binding)
    return kubeconfig


def _kubectl_coalmine(h: Sandbox, kubeconfig: Path, *args: str) -> str:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "kubectl-coalmine"), *args, "iris",
         "-n", h.ns, "--kubeconfig", str(kubeconfig)],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
    )  # fmt: skip
    assert result.returncode == 0, f"kubectl coalmine {args}: {result.stdout}{result.stderr}"
    return result.stdout


def test_user_role_drives_every_control(harness: Sandbox, models: ModelArtifacts):
    h = harness
    ann = _grant_user(h)
    h.apply(spec(models.model("v1"), steps=SLOW_STEPS, prometheus=h.prometheus.url))
    h.wait_status(lambda s: s.get("phase") == "Healthy", 90, "v1 to serve")
    h.start_traffic()
    h.apply(spec(models.model("v2"), steps=SLOW_STEPS, prometheus=h.prometheus.url))
    h.wait_status(lambda s: s.get("weight", 0) > 0, 120, "the v2 canary to take traffic")

    _kubectl_coalmine(h, ann, "pause")
    h.wait_status(lambda s: s.get("phase") == "Paused", 60, "pause")
    _kubectl_coalmine(h, ann, "resume")
    h.wait_status(lambda s: s.get("phase") == "Progressing", 60, "resume")
    _kubectl_coalmine(h, ann, "promote", "--full")
    h.wait_status(
        lambda s: s.get("phase") == "Healthy" and s["stable"]["version"] == "v2", 120, "promote"
    )

    h.apply(spec(models.model("v3"), steps=SLOW_STEPS, prometheus=h.prometheus.url))
    h.wait_status(lambda s: s.get("weight", 0) > 0, 120, "the v3 canary to take traffic")
    _kubectl_coalmine(h, ann, "abort")
    aborted = h.wait_status(lambda s: s.get("phase") == "Degraded", 90, "abort")
    assert aborted["stable"]["version"] == "v2"
    _kubectl_coalmine(h, ann, "retry")
    h.wait_status(
        lambda s: (
            s.get("phase") == "Progressing" and (s.get("canary") or {}).get("version") == "v3"
        ),
        60,
        "retry to start v3 again",
    )
    assert "v2" in _kubectl_coalmine(h, ann, "history")
    assert "iris" in _kubectl_coalmine(h, ann, "status")
    # Consumed controls are removed, so none fires twice.
    leftover = [
        k for k in h.md()["metadata"].get("annotations", {}) if k.startswith("coalmine.dev/")
    ]
    assert leftover == []
