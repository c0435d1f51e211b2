"""The operator installed by our Helm chart, and the model artifacts its pods download.

`helm install` runs the real chart (CRD, RBAC, Deployment) with the images built from the
project's Dockerfiles; the operator runs in a pod and talks to the API server through the
`kubernetes` Service like in any cluster.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from coalmine.devcluster.process import ManagedProcess, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "coalmine"


def helm_binary() -> str:
    """charts/install-helm.sh prints the cached helm's path (installing it the first time)."""
    script = ROOT / "charts" / "install-helm.sh"
    out = subprocess.run([str(script)], check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1]


class HelmRelease:
    def __init__(self, kubeconfig: Path, workdir: Path, name: str, namespace: str) -> None:
        self.kubeconfig, self.workdir = kubeconfig, workdir
        self.name, self.namespace = name, namespace
        self._helm = helm_binary()

    def _run(self, *args: str) -> str:
        argv = [
            self._helm,
            *args,
            f"--kubeconfig={self.kubeconfig}",
            f"--namespace={self.namespace}",
        ]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def install(self, values: dict[str, Any], timeout: str = "300s") -> str:
        values_file = self.workdir / f"{self.name}-values.yaml"
        values_file.parent.mkdir(parents=True, exist_ok=True)
        values_file.write_text(yaml.safe_dump(values))
        return self._run(
            "install", self.name, str(CHART), "--create-namespace", f"--values={values_file}",
            "--wait", f"--timeout={timeout}",
        )  # fmt: skip

    def uninstall(self) -> None:
        self._run("uninstall", self.name, "--wait")


def operator_values(
    operator_image: str, serving_image: str, prometheus: str, tick_seconds: float = 1.0
) -> dict[str, Any]:
    repository, tag = operator_image.rsplit(":", 1)
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
        "operator": {
            "defaultServingImage": serving_image,
            "defaultPrometheusAddress": prometheus,
            # A faster tick than production's 5 s keeps the suite short; semantics are the same.
            "extraEnv": [{"name": "COALMINE_TICK_SECONDS", "value": str(tick_seconds)}],
        },
    }


class ArtifactServer:
    """Plain HTTP on the pod bridge's address: model pods' fetch init containers download
    their artifacts from here (pod network -> host, nothing leaves the machine)."""

    def __init__(self, directory: Path, address: str, log: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://{address}:{self.port}"
        argv = [sys.executable, "-m", "http.server", str(self.port), "--bind", address,
                "--directory", str(directory)]  # fmt: skip
        self.process = ManagedProcess("artifact-server", argv, log)

    def start(self) -> None:
        import httpx

        self.process.start()
        wait_until(
            lambda: True if httpx.get(self.base_url, timeout=1).status_code == 200 else None,
            timeout=15, what="the artifact server", process=self.process,
        )  # fmt: skip

    def stop(self) -> None:
        self.process.stop()
