"""The operator installed by our Helm chart, as users install it.

`helm install` runs the real chart (CRD, RBAC, Deployment) with the images built from the
project's Dockerfiles; the operator runs in a pod and talks to the API server through the
`kubernetes` Service like in any cluster. Used by the e2e suite and the real-node demo.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from e2e.devcluster import REPO_ROOT

CHART = REPO_ROOT / "charts" / "coalmine"
INSTALL_SCRIPT = REPO_ROOT / "charts" / "install-helm.sh"


def helm_binary() -> str:
    """charts/install-helm.sh prints the cached helm's path (installing it the first time)."""
    done = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False, timeout=900
    )
    if done.returncode != 0:
        raise RuntimeError(f"charts/install-helm.sh failed:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


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
