"""``kubectl coalmine`` on a real API server, as a person holding only examples/rbac-user.yaml.

The status is written by the test (as an admin, through the status subresource) in the
operator's place: this file tests the CLI and the documented role, not the operator. A second
person without the role shows the forbidden message names the missing verb and resource.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from coalmine.cli.kubectl import cli
from e2e.devcluster.controlplane import ControlPlane
from e2e.devcluster.process import wait_until
from tests.coalmine.cli.samples import progressing

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
CRD = ROOT / "crds" / "modeldeployment.yaml"
USER_ROLE = ROOT / "examples" / "rbac-user.yaml"
EXAMPLE = ROOT / "examples" / "minimal.yaml"
CRD_NAME = "modeldeployments.coalmine.dev"


@dataclass
class Admin:
    """kubectl as cluster-admin, for setting the scene."""

    binary: str
    kubeconfig: Path
    cache_dir: Path

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                self.binary,
                f"--kubeconfig={self.kubeconfig}",
                f"--cache-dir={self.cache_dir}",
                *args,
            ],
            input=stdin,
            env={**os.environ, "KUBECONFIG": ""},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout

    def object(self, namespace: str, name: str) -> dict[str, Any]:
        out = self.ok("get", "modeldeployment", name, "-n", namespace, "-o", "json")
        return json.loads(out)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def admin(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Admin:
    tool = Admin(
        str(control_plane.bin_dir / "kubectl"),
        control_plane.kubeconfig,
        tmp_path_factory.mktemp("kubectl-cache"),
    )
    # Another module may have just deleted the CRD; applying onto a terminating one would fail.
    wait_until(lambda: None if _terminating(tool) else True, timeout=60, what="no terminating CRD")
    tool.ok("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    tool.ok("wait", "--for=condition=Established", f"crd/{CRD_NAME}")
    tool.ok("apply", "--server-side", "-f", str(USER_ROLE))
    return tool


def _terminating(admin: Admin) -> bool:
    done = admin.run("get", "crd", CRD_NAME, "-o", "jsonpath={.metadata.deletionTimestamp}")
    return done.returncode == 0 and bool(done.stdout.strip())


@dataclass
class Scene:
    namespace: str
    name: str
    ann: Path  # kubeconfig of a person bound to coalmine-user in the namespace
    bob: Path  # kubeconfig of a person with no role at all


@pytest.fixture
def scene(admin: Admin, control_plane: ControlPlane) -> Iterator[Scene]:
    ns = f"cli-{uuid.uuid4().hex[:8]}"
    ann = control_plane.kubeconfig_for_service_account(ns, "ann")
    bob = control_plane.kubeconfig_for_service_account(ns, "bob")
    admin.ok(
        "create", "rolebinding", "ann-drives-rollouts", "-n", ns,
        "--clusterrole=coalmine-user", f"--serviceaccount={ns}:ann",
    )  # fmt: skip
    manifest = yaml.safe_load(EXAMPLE.read_text())
    manifest["metadata"]["namespace"] = ns
    wait_until(
        lambda: (
            True
            if admin.run("create", "-f", "-", stdin=yaml.safe_dump(manifest)).returncode == 0
            else None
        ),
        timeout=30,
        what="the ModelDeployment created (discovery may lag the CRD)",
    )
    name = manifest["metadata"]["name"]
    status = {"status": progressing()["status"]}
    admin.ok("patch", "modeldeployment", name, "-n", ns, "--subresource=status", "--type=merge",
             "-p", json.dumps(status))  # fmt: skip
    admin.ok("create", "-f", "-", stdin=yaml.safe_dump(_event(ns, name)))
    yield Scene(ns, name, ann, bob)
    admin.run("delete", "namespace", ns, "--wait=false")


def _event(namespace: str, name: str) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.step", "namespace": namespace},
        "involvedObject": {
            "apiVersion": "coalmine.dev/v1alpha1",
            "kind": "ModelDeployment",
            "name": name,
            "namespace": namespace,
        },
        "type": "Normal",
        "reason": "StepAdvanced",
        "message": "step 2/3: weight 30%",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "source": {"component": "coalmine-operator"},
    }


def kubectl_coalmine(kubeconfig: Path, *args: str) -> Result:
    # No -n: the namespace must come from the kubeconfig's context, as for a real user.
    return CliRunner().invoke(cli, [*args, "--kubeconfig", str(kubeconfig)])


def test_status_shows_the_rollout_and_its_events(scene: Scene) -> None:
    result = kubectl_coalmine(scene.ann, "status", scene.name)

    assert result.exit_code == 0, result.output
    assert f"Namespace:  {scene.namespace}\n" in result.output
    assert "Phase:      Progressing\n" in result.output
    assert "  accuracy      quality     0.95     0.96     >= stable - 0.02   20" in result.output
    assert "Normal   StepAdvanced   step 2/3: weight 30%" in result.output


def test_every_control_works_with_only_the_documented_role(scene: Scene, admin: Admin) -> None:
    controls = (["promote"], ["promote", "--full"], ["abort"], ["history"], ["pause"], ["resume"],
                ["rotate-keys"])  # fmt: skip
    for args in controls:
        result = kubectl_coalmine(scene.ann, args[0], scene.name, *args[1:])
        assert result.exit_code == 0, f"{args}: {result.output}"
    # retry makes no sense while the canary progresses: refused, then forced.
    assert kubectl_coalmine(scene.ann, "retry", scene.name).exit_code == 1
    assert kubectl_coalmine(scene.ann, "retry", scene.name, "--force").exit_code == 0

    obj = admin.object(scene.namespace, scene.name)
    annotations = obj["metadata"].get("annotations", {})
    for key in ("promote", "promote-full", "abort", "retry", "rotate-keys"):
        assert datetime.fromisoformat(annotations[f"coalmine.dev/{key}"]).tzinfo is not None
    assert obj["spec"]["paused"] is False  # paused, then resumed
    assert obj["spec"]["model"]["version"] == "v1"  # a merge patch leaves the rest alone


def test_a_person_without_the_role_is_told_what_is_missing(scene: Scene) -> None:
    result = kubectl_coalmine(scene.bob, "promote", scene.name)

    assert result.exit_code == 4
    assert result.output.startswith(
        f"error: forbidden: you may not get modeldeployments.coalmine.dev in namespace "
        f"'{scene.namespace}' (missing RBAC verb 'get' on 'modeldeployments.coalmine.dev')"
    )


def test_a_missing_object_is_reported_as_not_found(scene: Scene) -> None:
    result = kubectl_coalmine(scene.ann, "status", "no-such-model")

    assert result.exit_code == 3
    assert f"'no-such-model' not found in namespace '{scene.namespace}'" in result.output
