"""The generated ModelDeployment CRD on a real API server: examples pass, invalid files fail.

Everything goes through kubectl (the one built with the server), because that is what users
run: it asks the server for strict field validation, so unknown fields are rejected too.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.devcluster.controlplane import ControlPlane
from e2e.devcluster.process import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "modeldeployment.yaml"
# ModelDeployment examples only: examples/ also holds cluster-scoped objects (the user
# ClusterRole) that other tests on this shared control plane create for themselves.
EXAMPLES = sorted(
    p for p in (ROOT / "examples").glob("*.yaml") if "kind: ModelDeployment" in p.read_text()
)
INVALID = sorted((ROOT / "tests" / "coalmine" / "api" / "invalid").glob("*.yaml"))


def test_the_cases_below_are_found() -> None:
    # An empty glob would quietly parametrize nothing (as when this file moved a level up).
    assert EXAMPLES and INVALID, f"nothing found under {ROOT}"


class Kubectl:
    def __init__(self, control_plane: ControlPlane, cache_dir: Path):
        self.binary = str(control_plane.bin_dir / "kubectl")
        self.env = {**os.environ, "KUBECONFIG": str(control_plane.kubeconfig)}
        self.cache_dir = cache_dir

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, f"--cache-dir={self.cache_dir}", *args],
            input=stdin,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self.run(*args, stdin=stdin)
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result.stdout


@pytest.fixture(scope="module")
def kubectl(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Kubectl]:
    """kubectl against a control plane with the CRD installed and served."""
    tool = Kubectl(control_plane, tmp_path_factory.mktemp("kubectl-cache"))
    tool.ok("apply", "--server-side", "-f", str(CRD))
    tool.ok("wait", "--for=condition=Established", "crd/modeldeployments.coalmine.dev")
    # Established means served; kubectl's discovery may still lag a moment, so poll for it.
    wait_until(
        lambda: True if tool.run("get", "modeldeployments", "-A").returncode == 0 else None,
        timeout=30,
        what="modeldeployments in discovery",
    )
    yield tool
    tool.run("delete", "-f", str(CRD), "--wait=false")


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    name = f"crd-{uuid.uuid4().hex[:10]}"
    kubectl.ok("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false")


def _documents_in(path: Path, namespace: str) -> list[dict[str, Any]]:
    """The file's manifests, moved into the test's namespace (examples name their own)."""
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for doc in documents:
        doc.setdefault("metadata", {})["namespace"] = namespace
    return documents


def _expectations(path: Path) -> tuple[list[str], bool]:
    """`# expect: <substring>` lines, and whether the file is an update (`# update:`)."""
    header = [line for line in path.read_text().splitlines() if line.startswith("#")]
    expected = [line.removeprefix("# expect:").strip() for line in header
                if line.startswith("# expect:")]  # fmt: skip
    return expected, any(line.startswith("# update:") for line in header)


def _printer_columns() -> list[dict[str, Any]]:
    [version] = [v for v in yaml.safe_load(CRD.read_text())["spec"]["versions"] if v["served"]]
    columns: list[dict[str, Any]] = version["additionalPrinterColumns"]
    return columns


def test_the_lead_files_exist() -> None:
    # Guards the parametrized tests below against silently running on zero files.
    assert CRD.is_file()
    assert EXAMPLES
    assert INVALID


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_each_example_is_accepted(kubectl: Kubectl, namespace: str, example: Path) -> None:
    manifests = yaml.safe_dump_all(_documents_in(example, namespace))

    kubectl.ok("create", "-f", "-", stdin=manifests)


@pytest.mark.parametrize("invalid", INVALID, ids=lambda path: path.stem)
def test_each_invalid_manifest_is_rejected_naming_the_problem(
    kubectl: Kubectl, namespace: str, invalid: Path
) -> None:
    expected, is_update = _expectations(invalid)
    assert expected, f"{invalid.name} has no '# expect:' line"
    documents = _documents_in(invalid, namespace)
    if is_update:
        original, documents = documents[0], documents[1:]
        kubectl.ok("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(original))

    verb = ["apply", "--server-side"] if is_update else ["create"]
    result = kubectl.run(*verb, "-f", "-", stdin=yaml.safe_dump_all(documents))

    assert result.returncode != 0, f"{invalid.name} was accepted"
    # Rejected by the API server (422 reads "is invalid", others "Error from server"), not kubectl.
    assert "is invalid" in result.stderr or "Error from server" in result.stderr
    for substring in expected:
        assert substring in result.stderr


def test_get_shows_the_printer_columns(kubectl: Kubectl, namespace: str) -> None:
    example = ROOT / "examples" / "minimal.yaml"
    kubectl.ok("create", "-f", "-", stdin=yaml.safe_dump_all(_documents_in(example, namespace)))

    narrow = kubectl.ok("get", "modeldeployments", "-n", namespace).splitlines()
    wide = kubectl.ok("get", "modeldeployments", "-n", namespace, "-o", "wide").splitlines()

    columns = _printer_columns()
    assert narrow[0].split() == ["NAME"] + [
        c["name"].upper() for c in columns if not c.get("priority")
    ]
    assert wide[0].split() == ["NAME"] + [c["name"].upper() for c in columns]
    assert narrow[1].split()[0] == "iris"
