"""`dev up --node` (e2e.devcluster.cli): the detached dev cluster plus a node that runs pods.

Same state dir and state.json as `devstate` (so `dev env` works unchanged); what the
node's teardown needs beyond stopping processes (its paths) goes into `node.json` beside it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

from e2e.devcluster import devstate, nodeconfig
from e2e.devcluster.cluster import LocalCluster
from e2e.devcluster.devstate import DevState
from e2e.devcluster.node import teardown_host
from e2e.devcluster.nodeconfig import NodePaths
from e2e.devcluster.prometheus import PrometheusServer
from e2e.devcluster.runtime import ContainerRuntime


def up(state_dir: Path) -> DevState:
    existing = devstate.load(state_dir)
    if existing and existing.alive():
        raise RuntimeError(f"a dev cluster is already running (state in {state_dir})")
    run_dir = state_dir / "run"
    shutil.rmtree(run_dir, ignore_errors=True)  # fresh PKI and etcd every time
    cluster = LocalCluster(run_dir)
    cluster.start()
    prometheus = PrometheusServer(run_dir / "prometheus")
    try:
        prometheus.start()
    except BaseException:
        cluster.stop()
        raise
    node = cluster.node
    (state_dir / "node.json").write_text(json.dumps({
        "workdir": str(node.paths.workdir),
        "containerd_root": str(node.paths.containerd_root),
        "bin_dir": str(node.bin_dir),
    }))  # fmt: skip
    processes = [*cluster.processes, prometheus.process]
    state = DevState(
        kubeconfig=str(cluster.kubeconfig),
        server=cluster.control_plane.server,
        prometheus_url=prometheus.url,
        logs=str(run_dir),
        startup_seconds=round(cluster.startup_seconds or 0.0, 1),
        processes={p.name: [p.detach(), p.argv[0]] for p in processes},
    )
    (state_dir / "state.json").write_text(json.dumps(asdict(state), indent=2))
    return state


def down(state_dir: Path) -> list[str]:
    """Stop the node's pods and processes and clean the host, then the control plane."""
    node_file = state_dir / "node.json"
    if not node_file.is_file():
        return devstate.down(state_dir)
    info = json.loads(node_file.read_text())
    paths = NodePaths(Path(info["workdir"]), Path(info["containerd_root"]))
    state = devstate.load(state_dir)
    alive = state.alive() if state else {}
    if "kubelet" in alive:  # first, or it would restart the pods removed next
        devstate._stop_group(alive["kubelet"], grace=10.0)
    pods_left: Exception | None = None
    if "containerd" in alive:
        try:
            ContainerRuntime(paths.containerd_socket).remove_all_pods()
        except (RuntimeError, TimeoutError) as exc:
            pods_left = exc  # still undo the rest below, then say so
    stopped = devstate.down(state_dir)
    proxy_config = paths.workdir / "kube-proxy.yaml"
    if proxy_config.is_file():
        argv = nodeconfig.kube_proxy_argv(Path(info["bin_dir"]), proxy_config, cleanup=True)
        subprocess.run(argv, capture_output=True, check=False)
    teardown_host(paths)
    node_file.unlink()
    if pods_left is not None:
        raise pods_left
    return stopped
