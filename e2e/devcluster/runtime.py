"""The node's containerd, driven through its own CLIs: `ctr` (images) and `crictl` (pods).

crictl speaks the CRI, the same API the kubelet uses, so removing pods through it runs the CNI
DEL that releases each pod's address and veth; `ctr` alone would leave those behind.
crictl is built from the Go module proxy by e2e/cluster/node-deps.sh.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from e2e.devcluster.process import wait_until

CRI_NAMESPACE = "k8s.io"  # the containerd namespace the CRI plugin (hence the kubelet) uses
CRICTL_VERSION = "v1.34.0"


def cache_root() -> Path:
    """$COALMINE_CACHE, else ~/.cache/coalmine: the same root e2e/cluster/build.sh uses."""
    return Path(os.environ.get("COALMINE_CACHE") or Path.home() / ".cache" / "coalmine")


def find_crictl() -> str:
    """$COALMINE_CRICTL, else the cached build of node-deps.sh, else crictl on PATH."""
    cached = cache_root() / f"crictl-{CRICTL_VERSION}" / "bin" / "crictl"
    found = os.environ.get("COALMINE_CRICTL") or (
        str(cached) if cached.is_file() else shutil.which("crictl")
    )
    if not found:
        raise FileNotFoundError("crictl not found: run e2e/cluster/node-deps.sh")
    return found


class ContainerRuntime:
    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def _ctr(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        argv = ["ctr", f"--address={self.socket}", f"--namespace={CRI_NAMESPACE}", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def _crictl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        endpoint = f"unix://{self.socket}"
        argv = [find_crictl(), f"--runtime-endpoint={endpoint}", f"--image-endpoint={endpoint}"]
        return subprocess.run(
            [*argv, *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    def ready(self) -> bool | None:
        """True once the CRI plugin answers (a plain `ctr version` succeeds earlier)."""
        if not self.socket.exists():
            return None
        return True if self._crictl("info").returncode == 0 else None

    def images(self) -> list[str]:
        return self._ctr("images", "list", "--quiet").stdout.split()

    def has_image(self, name: str) -> bool:
        return name in self.images()

    def import_archive(self, archive: Path) -> None:
        """Import an OCI/docker archive into the CRI namespace, unpacked for overlayfs."""
        result = self._ctr("images", "import", "--snapshotter=overlayfs", str(archive))
        if result.returncode != 0:
            raise RuntimeError(f"ctr images import {archive} failed: {result.stderr}")

    def remove_image(self, name: str) -> None:
        """Drop the reference; containerd garbage-collects content no container still uses."""
        self._ctr("images", "remove", name)

    def remove_untagged_images(self) -> list[str]:
        """Drop the images no name refers to any more; returns their ids.

        Importing an archive also names the image by its id (`sha256:...`), so removing its
        tag alone kept every old image and its layers: 11 GB after a day of rebuilds.
        """
        listed = self._crictl("images", "--output=json")
        if listed.returncode != 0:
            raise RuntimeError(f"crictl images failed: {listed.stderr}")
        untagged = [i["id"] for i in json.loads(listed.stdout)["images"] if not i.get("repoTags")]
        for image_id in untagged:
            self._ctr("images", "remove", image_id)
        return untagged

    def remove_all_pods(self, timeout: float = 60.0) -> None:
        """Stop and remove every pod sandbox (and its containers) through the CRI.

        A container the kubelet was starting when it was stopped can block that removal in two
        ways, both seen in CI or in e2e/test_node_teardown.py:
        - containerd holds it "in starting state" until the cancelled start returns (about 2 s);
        - a start cancelled late can leave its task running while the CRI records the container
          as only created, so stopping the sandbox never kills it ("cannot delete running task").
        So removal is retried until `timeout`, and before each retry every task still running is
        killed: this containerd is the node's own, and the whole node is going away.
        """

        def removed() -> bool:  # or raises, which wait_until retries
            result = self._crictl("rmp", "--force", "--all")
            if result.returncode == 0:
                return True
            self._kill_running_tasks()
            raise RuntimeError(f"crictl rmp failed: {result.stderr.strip()}")

        wait_until(removed, timeout=timeout, what="every pod sandbox removed", interval=1.0)

    def _kill_running_tasks(self) -> None:
        # Every task not yet stopped, CREATED ones too: a start cancelled between create and
        # start leaves a CREATED task, and containerd refuses to delete its container
        # ("cannot delete running task") just as for a RUNNING one. `delete --force` kills and
        # deletes in one step.
        rows = [row.split() for row in self._ctr("tasks", "list").stdout.splitlines()[1:]]
        for task_id, _pid, status in (row for row in rows if len(row) == 3):  # TASK PID STATUS
            if status != "STOPPED":
                self._ctr("tasks", "delete", "--force", task_id)
