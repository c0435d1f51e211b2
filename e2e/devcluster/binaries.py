"""Locate the Kubernetes and etcd binaries built by e2e/cluster/build.sh."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from e2e.devcluster import REPO_ROOT

REQUIRED = ("etcd", "kube-apiserver", "kube-controller-manager")
_BUILD_SCRIPT = REPO_ROOT / "e2e" / "cluster" / "build.sh"


def kube_bin_dir() -> Path:
    """$COALMINE_KUBE_BIN if set, else whatever e2e/cluster/build.sh prints last.

    build.sh returns at once when its cache is complete; a cold build takes tens of minutes,
    so `make test` runs it before pytest (where a test timeout would cut it short).
    """
    override = os.environ.get("COALMINE_KUBE_BIN")
    if override:
        bin_dir = Path(override)
    else:
        result = subprocess.run([str(_BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True)
        bin_dir = Path(result.stdout.strip().splitlines()[-1])
    missing = [name for name in REQUIRED if not (bin_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{bin_dir} lacks {', '.join(missing)}")
    return bin_dir
