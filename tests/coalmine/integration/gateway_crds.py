"""The real Gateway API CRDs, from the ``sigs.k8s.io/gateway-api`` Go module (module proxy,
no GitHub): ``go mod download`` puts the release's ``config/crd`` in the module cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

GATEWAY_API_VERSION = "v1.2.1"
NEEDED = ("gateway.networking.k8s.io_httproutes.yaml", "gateway.networking.k8s.io_gateways.yaml")


def gateway_api_crds() -> list[Path]:
    """$COALMINE_GATEWAY_API_CRDS (a directory), else the module downloaded with Go."""
    override = os.environ.get("COALMINE_GATEWAY_API_CRDS")
    if override:
        directory = Path(override)
    else:
        go = shutil.which("go") or "/usr/local/go/bin/go"
        result = subprocess.run(
            [go, "mod", "download", "-json", f"sigs.k8s.io/gateway-api@{GATEWAY_API_VERSION}"],
            check=True, capture_output=True, text=True, timeout=300,
            env={**os.environ, "GOFLAGS": "-mod=mod"},
        )  # fmt: skip
        directory = Path(json.loads(result.stdout)["Dir"]) / "config" / "crd" / "standard"
    return [directory / name for name in NEEDED]
