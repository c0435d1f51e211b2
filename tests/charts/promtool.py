"""promtool, the e2e Prometheus' own release and build (e2e/cluster/prometheus-build.sh, cached;
`make test-deps` builds it), and the chart's rendered alert rules as promtool reads them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from e2e.devcluster import REPO_ROOT
from tests.charts.helm import Helm

BUILD_SCRIPT = REPO_ROOT / "e2e" / "cluster" / "prometheus-build.sh"


def promtool_binary() -> Path:
    """$COALMINE_PROMTOOL, else the cached build (built the first time, a few minutes). Never
    Debian's promtool on PATH: it is Prometheus 2.42, not the release the e2e tier runs."""
    if found := os.environ.get("COALMINE_PROMTOOL"):
        return Path(found)
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "promtool"], capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, f"prometheus-build.sh promtool failed:\n{done.stderr}"
    return Path(done.stdout.strip().splitlines()[-1])


def run_promtool(binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *args], capture_output=True, text=True, check=False, timeout=120
    )


def rendered_rules(helm: Helm, tmp: Path, values: dict[str, Any]) -> Path:
    """The chart's PrometheusRule, rendered by helm with ``values``, as a promtool rule file
    (its ``spec.groups``) in ``tmp``."""
    objects = helm.template(values, tmp)
    (rule,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    path = tmp / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    return path
