"""A real helm binary for the chart tests (e2e.devcluster.helm: charts/install-helm.sh,
cached, offline after the first run), and a helper that renders the chart to objects."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from e2e.devcluster.helm import CHART, helm_binary


def install_helm() -> Path:
    """The helm path; a failure here is a test error, never a skip."""
    return Path(helm_binary())


@dataclass(frozen=True)
class Helm:
    binary: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, check=False, timeout=120
        )

    def template(
        self, values: dict[str, Any] | None = None, tmp: Path | None = None, *extra: str
    ) -> list[dict[str, Any]]:
        """Render the chart (release ``demo`` in ``coalmine-system``) to a list of objects."""
        done = self.run(
            "template", "demo", str(CHART), "-n", "coalmine-system", *_values(values, tmp), *extra
        )
        assert done.returncode == 0, done.stderr
        return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def _values(values: dict[str, Any] | None, tmp: Path | None) -> list[str]:
    if not values:
        return []
    assert tmp is not None, "values need a tmp dir for their file"
    path = tmp / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return ["--values", str(path)]


def one(objects: list[dict[str, Any]], kind: str, namespace: str | None = None) -> dict[str, Any]:
    found = [
        o
        for o in objects
        if o["kind"] == kind and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]
