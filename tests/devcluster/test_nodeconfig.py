"""The node's configuration files carry the settings this sandbox needs (see docs/e2e.md)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from e2e.devcluster import nodeconfig
from e2e.devcluster.nodeconfig import NodePaths

PATHS = NodePaths(Path("/run/node"), Path("/cache/containerd-root"))
CRI = "io.containerd.grpc.v1.cri"


def test_containerd_runs_on_cgroupfs_from_its_own_dirs_with_oom_adj_restricted() -> None:
    config = tomllib.loads(nodeconfig.containerd_toml(PATHS))
    cri = config["plugins"][CRI]
    assert config["root"] == "/cache/containerd-root"
    assert config["grpc"]["address"] == "/run/node/containerd.sock"
    assert cri["restrict_oom_score_adj"] is True  # root lacks CAP_SYS_RESOURCE here
    assert cri["sandbox_image"] == nodeconfig.PAUSE_IMAGE  # built locally, never pulled
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert cri["cni"] == {"bin_dir": nodeconfig.CNI_BIN_DIR, "conf_dir": "/run/node/net.d"}


def test_pod_network_is_a_private_bridge_without_masquerade() -> None:
    conflist = json.loads(nodeconfig.cni_conflist(PATHS))
    bridge = conflist["plugins"][0]
    assert bridge["bridge"] == nodeconfig.BRIDGE and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.0.0/24", "gateway": "10.244.0.1"}]]
    assert bridge["ipam"]["dataDir"] == "/run/node/cni-ipam"


def test_kubelet_tolerates_cgroup_v1_and_authenticates_callers() -> None:
    config = nodeconfig.kubelet_config(PATHS, Path("/pki/ca.crt"), 10250, 10248)
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["failCgroupV1"] is False and config["failSwapOn"] is False
    assert config["authentication"]["anonymous"] == {"enabled": False}
    assert config["authentication"]["webhook"] == {"enabled": True}
    assert config["authorization"] == {"mode": "Webhook"}
    assert config["containerRuntimeEndpoint"] == "unix:///run/node/containerd.sock"


def test_kube_proxy_uses_iptables_and_leaves_host_sysctls_alone() -> None:
    config = nodeconfig.kube_proxy_config(Path("/k"), 1, 2)
    assert config["mode"] == "iptables"  # no IPVS in this kernel
    assert config["iptables"]["localhostNodePorts"] is False  # else route_localnet=1
    assert config["conntrack"]["maxPerCore"] == 0
    cleanup = nodeconfig.kube_proxy_argv(Path("/bin"), Path("/c.yaml"), cleanup=True)
    assert cleanup[-1] == "--cleanup"


def test_a_workdir_too_deep_for_kubelet_sockets_is_refused_with_the_room_there_is() -> None:
    # The path a real demo run failed on: kubelet logged `bind: invalid argument` and went on.
    deep = Path("/tmp/pytest-of-root/pytest-106/test_the_demo_promotes_v2_then0/cluster/node")
    problem = NodePaths(deep, Path("/cache")).socket_path_problem()
    assert problem is not None and str(deep) in problem and "107" in problem
    room = int(problem.rsplit("at most ", 1)[1].split()[0])
    assert NodePaths(Path("/" + "d" * (room - 1)), Path("/c")).socket_path_problem() is None
    assert NodePaths(Path("/" + "d" * room), Path("/c")).socket_path_problem() is not None
