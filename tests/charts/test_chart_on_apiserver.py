"""``helm install`` of the chart on a real API server.

The server validates every object (schemas, RBAC rules, the binding's subjects), and Pod
Security admission set to ``restricted`` on the release namespace decides whether the
operator's pod may exist at all: the controller-manager creates it from the Deployment, so a
pod that shows up was admitted. (No kubelet in this tier: the pod is never scheduled.)
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.devcluster.controlplane import ControlPlane
from e2e.devcluster.process import wait_until
from tests.charts.helm import CHART, Helm

pytestmark = pytest.mark.integration

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def kubectl(plane: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(plane.bin_dir / "kubectl"), f"--kubeconfig={plane.kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def items(plane: ControlPlane, kind: str, namespace: str) -> list[dict[str, Any]]:
    done = kubectl(plane, "get", kind, "-n", namespace, "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["items"]  # type: ignore[no-any-return]


@pytest.fixture
def release(helm: Helm, control_plane: ControlPlane) -> Iterator[tuple[str, str]]:
    """A restricted namespace with the chart installed in it: (namespace, release)."""
    ns, name = f"chart-{uuid.uuid4().hex[:8]}", "coalmine"
    labels = [f"{k}={v}" for k, v in RESTRICTED.items()]
    assert kubectl(control_plane, "create", "namespace", ns).returncode == 0
    assert kubectl(control_plane, "label", "namespace", ns, *labels).returncode == 0
    # The CRD is tested on the server by tests/devcluster/test_crd_on_apiserver.py;
    # leaving it out keeps this test about the operator's own objects.
    done = helm.run(
        "install", name, str(CHART), "-n", ns, "--skip-crds", "--wait=false",
        "--kubeconfig", str(control_plane.kubeconfig),
        "--set", f"fullnameOverride=coalmine-{ns}",  # cluster-scoped names must not collide
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    yield ns, name
    helm.run("uninstall", name, "-n", ns, "--kubeconfig", str(control_plane.kubeconfig))
    kubectl(control_plane, "delete", "namespace", ns, "--wait=false")


def test_install_is_accepted_and_the_pod_passes_restricted_admission(
    release: tuple[str, str], control_plane: ControlPlane
) -> None:
    ns, _ = release

    pods = wait_until(
        lambda: (found := items(control_plane, "pods", ns)) and len(found) >= 2 and found,
        timeout=60,
        what="the two operator pods (leader and standby)",
    )

    assert len(pods) == 2
    assert {p["spec"]["serviceAccountName"] for p in pods} == {f"coalmine-{ns}"}
    # The API server accepted the Lease Role and the PodDisruptionBudget as rendered.
    budgets = items(control_plane, "poddisruptionbudgets", ns)
    assert [b["spec"]["minAvailable"] for b in budgets] == [1]
    roles = items(control_plane, "roles", ns)
    assert [r["rules"][0]["resources"] for r in roles] == [["leases"]]
    # Nothing was refused on the way (a refused pod leaves a FailedCreate event instead).
    reasons = {e["reason"] for e in items(control_plane, "events", ns)}
    assert "FailedCreate" not in reasons


def test_uninstall_removes_the_cluster_wide_rbac(
    release: tuple[str, str], helm: Helm, control_plane: ControlPlane
) -> None:
    ns, name = release
    role = f"clusterrole/coalmine-{ns}"
    assert kubectl(control_plane, "get", role).returncode == 0

    done = helm.run("uninstall", name, "-n", ns, "--kubeconfig", str(control_plane.kubeconfig))

    assert done.returncode == 0, done.stderr
    assert "NotFound" in kubectl(control_plane, "get", role).stderr


def test_a_root_pod_would_be_refused_here(
    release: tuple[str, str], control_plane: ControlPlane
) -> None:
    # Guards the admission test above: the namespace really enforces "restricted".
    ns, _ = release
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root", "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    done = subprocess.run(
        [str(control_plane.bin_dir / "kubectl"), f"--kubeconfig={control_plane.kubeconfig}",
         "create", "-f", "-"],
        input=json.dumps(pod), capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip

    assert done.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in done.stderr
