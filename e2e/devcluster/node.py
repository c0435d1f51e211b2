"""One worker node on this machine: containerd, kubelet, kube-proxy, plus the kube-scheduler.

Joins a running `ControlPlane` (which must advertise and listen on the pod bridge's address,
see `start_cluster`). Every component is a plain child process with a log under
`<workdir>/logs`; `stop()` removes what the node created: pods (through the CRI, so the CNI
plugin releases their addresses), mounts, iptables chains, the bridge and the cgroups.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from e2e.devcluster import hostnet, nodeconfig
from e2e.devcluster.controlplane import ControlPlane
from e2e.devcluster.kubeconfig import write_kubeconfig
from e2e.devcluster.nodeconfig import NODE_NAME, PAUSE_IMAGE, NodePaths
from e2e.devcluster.pause import build_pause_archive
from e2e.devcluster.pki import issue_client_cert
from e2e.devcluster.process import (
    ManagedProcess,
    free_port,
    processes_mentioning,
    wait_until,
)
from e2e.devcluster.runtime import ContainerRuntime

NODE_ROLE_BINDING = {
    # The Node authorizer is not enabled; RBAC's system:node role gives kubelets what they need.
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "coalmine-dev:nodes"},
    "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "system:node",
    },
    "subjects": [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}
    ],
}


class Node:
    """`start()` after the control plane, `stop()` before it."""

    def __init__(
        self, workdir: Path, bin_dir: Path, control_plane: ControlPlane, cache_dir: Path
    ) -> None:
        self.paths = NodePaths(workdir, cache_dir / "containerd-root")
        self.bin_dir = bin_dir
        self.cache_dir = cache_dir
        self.control_plane = control_plane
        self.runtime = ContainerRuntime(self.paths.containerd_socket)
        self.log_dir = workdir / "logs"
        self.startup_seconds: float | None = None
        self._processes: list[ManagedProcess] = []
        self._proxy_config = workdir / "kube-proxy.yaml"

    @property
    def processes(self) -> list[ManagedProcess]:
        return list(self._processes)

    def start(self, timeout: float = 180.0) -> None:
        began = time.monotonic()
        problem = self.paths.socket_path_problem()
        if problem:
            raise ValueError(problem)
        self.paths.workdir.mkdir(parents=True, exist_ok=True)
        hostnet.create_bridge()
        try:
            self._start_containerd(timeout)
            kubeconfigs = self._write_credentials()
            self._bind_node_role()
            self._start_scheduler(kubeconfigs["kube-scheduler"], timeout)
            self._start_kubelet(kubeconfigs["kubelet"], timeout)
            self._start_kube_proxy(kubeconfigs["kube-proxy"], timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Kubelet first (or it restarts what we remove), pods through the CRI, then the rest."""
        by_name = {p.name: p for p in self._processes}
        if "kubelet" in by_name:
            by_name["kubelet"].stop()
        pods_left: Exception | None = None
        if "containerd" in by_name and by_name["containerd"].running:
            try:
                self.runtime.remove_all_pods()
            except (RuntimeError, TimeoutError) as exc:
                pods_left = exc  # still undo the rest below, then say so
        for name in ("kube-proxy", "kube-scheduler", "containerd"):
            if name in by_name:
                by_name[name].stop()
        if self._proxy_config.is_file():
            self._run_logged("kube-proxy-cleanup", nodeconfig.kube_proxy_argv(
                self.bin_dir, self._proxy_config, cleanup=True))  # fmt: skip
        teardown_host(self.paths)
        if pods_left is not None:
            raise pods_left

    def _launch(self, name: str, argv: list[str]) -> ManagedProcess:
        process = ManagedProcess(name, argv, self.log_dir / f"{name}.log", cwd=self.paths.workdir)
        self._processes.append(process)
        process.start()
        return process

    def _run_logged(self, name: str, argv: list[str]) -> None:
        with (self.log_dir / f"{name}.log").open("ab") as log:
            subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False)

    def _start_containerd(self, timeout: float) -> None:
        paths = self.paths
        for directory in (paths.cni_conf_dir, paths.containerd_root, paths.pod_logs):
            directory.mkdir(parents=True, exist_ok=True)
        paths.containerd_config.write_text(nodeconfig.containerd_toml(paths))
        (paths.cni_conf_dir / "10-coalmine.conflist").write_text(nodeconfig.cni_conflist(paths))
        # No DNS server in the cluster: fail lookups at once instead of after a timeout.
        paths.resolv_conf.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        argv = ["containerd", f"--config={paths.containerd_config}"]
        process = self._launch("containerd", argv)
        wait_until(self.runtime.ready, timeout=timeout, what="containerd", process=process)
        if not self.runtime.has_image(PAUSE_IMAGE):
            self.runtime.import_archive(build_pause_archive(self.cache_dir, PAUSE_IMAGE))

    def _write_credentials(self) -> dict[str, Path]:
        pki, out = self.control_plane.pki, self.paths.workdir / "pki"
        users = {
            "kubelet": (f"system:node:{NODE_NAME}", "system:nodes"),
            "kube-proxy": ("system:kube-proxy", None),  # bound to system:node-proxier
            "kube-scheduler": ("system:kube-scheduler", None),  # bound to its bootstrap role
        }
        kubeconfigs = {}
        for name, (user, group) in users.items():
            pair = issue_client_cert(pki.ca, out / name, user, group)
            kubeconfigs[name] = write_kubeconfig(
                self.paths.workdir / f"{name}.kubeconfig", server=self.control_plane.server,
                ca_cert=pki.ca.cert, user=user, client_cert=pair.cert, client_key=pair.key,
            )  # fmt: skip
        return kubeconfigs

    def _bind_node_role(self) -> None:
        with self.control_plane.api_client() as api:
            response = api.post(
                "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", json=NODE_ROLE_BINDING
            )
            if response.status_code != 409:
                response.raise_for_status()

    def _start_scheduler(self, kubeconfig: Path, timeout: float) -> None:
        port = free_port()
        argv = nodeconfig.scheduler_argv(
            self.bin_dir, kubeconfig, port, self.paths.workdir / "scheduler-certs"
        )
        process = self._launch("kube-scheduler", argv)
        _wait_healthz(f"https://127.0.0.1:{port}/healthz", timeout, process)

    def _start_kubelet(self, kubeconfig: Path, timeout: float) -> None:
        config = self.paths.workdir / "kubelet.yaml"
        settings = nodeconfig.kubelet_config(
            self.paths, self.control_plane.pki.ca.cert, free_port(), free_port()
        )
        config.write_text(yaml.safe_dump(settings))
        argv = nodeconfig.kubelet_argv(self.bin_dir, self.paths, kubeconfig, config)
        process = self._launch("kubelet", argv)
        with self.control_plane.api_client() as api:
            wait_until(
                lambda: True if _node_ready(api) else None,
                timeout=timeout, what=f"node {NODE_NAME} Ready", interval=0.5, process=process,
            )  # fmt: skip

    def _start_kube_proxy(self, kubeconfig: Path, timeout: float) -> None:
        healthz = free_port()
        settings = nodeconfig.kube_proxy_config(kubeconfig, healthz, free_port())
        self._proxy_config.write_text(yaml.safe_dump(settings))
        process = self._launch("kube-proxy", nodeconfig.kube_proxy_argv(
            self.bin_dir, self._proxy_config))  # fmt: skip
        # /healthz turns 200 once the first full iptables sync is done.
        _wait_healthz(f"http://127.0.0.1:{healthz}/healthz", timeout, process)


def teardown_host(paths: NodePaths) -> None:
    """Undo what the node did to the host; safe to call after a crash and to call twice."""
    _kill_orphaned_shims(paths.containerd_socket)
    for mount in _mounts_under(paths.workdir, paths.containerd_root):
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
    hostnet.remove_iptables_chains()
    hostnet.delete_bridge()
    hostnet.remove_kubepods_cgroups()
    shutil.rmtree(paths.cni_ipam_dir, ignore_errors=True)


def _kill_orphaned_shims(containerd_socket: Path) -> None:
    """Shims outlive containerd by design. A start cancelled by the kubelet's stop can leave one
    behind with no container (4 node stops in 10 did, in e2e/test_node_teardown.py), which
    nothing would ever end."""
    for pid in processes_mentioning(f"-address {containerd_socket}"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _mounts_under(*roots: Path) -> list[str]:
    """Mount points below `roots`, deepest first (so parents unmount after their children)."""
    prefixes = tuple(f"{root}/" for root in roots)
    lines = Path("/proc/self/mounts").read_text().splitlines()
    points = [line.split()[1] for line in lines if line.split()[1].startswith(prefixes)]
    return sorted(set(points), key=len, reverse=True)


def _wait_healthz(url: str, timeout: float, process: ManagedProcess) -> None:
    # Serving certificates are self-signed on the fly: only liveness is read from them.
    with httpx.Client(verify=False, timeout=2.0) as http:
        wait_until(
            lambda: True if http.get(url).status_code == 200 else None,
            timeout=timeout, what=f"{process.name} {url}", process=process,
        )  # fmt: skip


def _node_ready(api: httpx.Client) -> bool:
    response = api.get(f"/api/v1/nodes/{NODE_NAME}")
    if response.status_code != 200:
        return False
    conditions: list[dict[str, Any]] = response.json().get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
