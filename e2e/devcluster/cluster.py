"""A whole single-node cluster on this machine: control plane + node + the project's images.

    cluster = LocalCluster(workdir)
    cluster.start()                 # ~15 s warm: etcd, apiserver, KCM, scheduler, node Ready
    image = cluster.load_image(SERVING)   # build (cached) and import into the node
    ...
    cluster.stop()                  # pods, processes, iptables, bridge, cgroups: all gone

The apiserver listens on all addresses and advertises the pod bridge's address, because pods
reach it through the `kubernetes` Service, whose endpoint must be routable from a pod.
"""

from __future__ import annotations

import time
from pathlib import Path

from e2e.devcluster import hostnet
from e2e.devcluster.binaries import kube_bin_dir
from e2e.devcluster.controlplane import ControlPlane
from e2e.devcluster.images import ImageBuilder, ImageSpec
from e2e.devcluster.node import Node
from e2e.devcluster.nodeconfig import BRIDGE_IP
from e2e.devcluster.process import ManagedProcess
from e2e.devcluster.runtime import cache_root


class LocalCluster:
    def __init__(self, workdir: Path, cache_dir: Path | None = None) -> None:
        self.workdir = workdir
        self.cache_dir = cache_dir or cache_root()
        bin_dir = kube_bin_dir()
        self.control_plane = ControlPlane(
            workdir / "control-plane", bin_dir, advertise_address=BRIDGE_IP, bind_address="0.0.0.0"
        )
        self.node = Node(workdir / "node", bin_dir, self.control_plane, self.cache_dir / "node")
        self.images = ImageBuilder(self.cache_dir / "images")
        self.startup_seconds: float | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.control_plane.kubeconfig

    @property
    def processes(self) -> list[ManagedProcess]:
        return [*self.control_plane.processes, *self.node.processes]

    def start(self) -> None:
        began = time.monotonic()
        hostnet.create_bridge()  # before the apiserver, which advertises the bridge's address
        try:
            self.control_plane.start()
            self.node.start()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def load_image(self, spec: ImageSpec, build_args: dict[str, str] | None = None) -> str:
        """Build `spec` (cached layers) and import it into the node; returns the image name."""
        name = self.images.build(spec, build_args)
        self.images.load(name, self.node.runtime)
        return name

    def stop(self) -> None:
        try:
            self.node.stop()
        finally:
            self.control_plane.stop()  # even if the node could not remove every pod
