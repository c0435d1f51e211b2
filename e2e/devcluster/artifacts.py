"""Model artifacts served over plain HTTP from this machine to the local node's pods."""

from __future__ import annotations

import sys
from pathlib import Path

from e2e.devcluster.process import ManagedProcess, free_port, wait_until


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
