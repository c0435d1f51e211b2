"""Configuration files and command lines of the node components (pure functions).

The node is one machine without systemd, on cgroup v1, whose root lacks CAP_SYS_RESOURCE:
hence cgroupfs everywhere, `failCgroupV1: false` (kubelet >= 1.35 refuses v1 otherwise) and
containerd's `restrict_oom_score_adj` (kubelet asks for oom_score_adj -997 on Guaranteed pods,
which only CAP_SYS_RESOURCE may set; restricted, containerd clamps it to its own score).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NODE_NAME = "coalmine-node"
POD_CIDR = "10.244.0.0/24"
BRIDGE = "cmbr0"
BRIDGE_IP = "10.244.0.1"  # the pods' gateway, and the host's address on the pod network
PAUSE_IMAGE = "localhost/coalmine/pause:3.10"
CNI_BIN_DIR = "/usr/lib/cni"  # Debian's containernetworking-plugins


# A unix socket's path fits in sun_path: 108 bytes, its NUL included. kubelet's longest socket
# is a listener it names <root-dir>/pod-resources/<up to 10 random digits>.
UNIX_SOCKET_PATH_MAX = 107
KUBELET_SOCKET_SUFFIX = len("/pod-resources/") + 10


@dataclass(frozen=True)
class NodePaths:
    """Where each piece lives. `containerd_root` is persistent (a cache): imported images
    survive a restart, which is what makes a warm start warm."""

    workdir: Path
    containerd_root: Path

    @property
    def containerd_state(self) -> Path:
        return self.workdir / "containerd-state"

    @property
    def containerd_socket(self) -> Path:
        return self.workdir / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.workdir / "containerd.toml"

    @property
    def cni_conf_dir(self) -> Path:
        return self.workdir / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.workdir / "cni-ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.workdir / "kubelet"

    def socket_path_problem(self) -> str | None:
        """Why kubelet could not bind its sockets under this workdir (None: it can). Checked
        up front: kubelet itself only logs `bind: invalid argument` and carries on broken."""
        longest = len(str(self.kubelet_root)) + KUBELET_SOCKET_SUFFIX
        if longest <= UNIX_SOCKET_PATH_MAX:
            return None
        room = len(str(self.workdir)) - (longest - UNIX_SOCKET_PATH_MAX)
        return (
            f"the node's directory {self.workdir} is too long: kubelet's sockets under it "
            f"would take {longest} characters, over the {UNIX_SOCKET_PATH_MAX} a unix socket "
            f"path may have; use a directory of at most {room} characters"
        )

    @property
    def pod_logs(self) -> Path:
        return self.workdir / "pod-logs"

    @property
    def resolv_conf(self) -> Path:
        return self.workdir / "resolv.conf"


def containerd_toml(paths: NodePaths) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{paths.containerd_root}"
state = "{paths.containerd_state}"
disabled_plugins = ["io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "{paths.containerd_socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{paths.workdir / "opt"}"

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  # Network namespaces under our state dir, not /run/netns: teardown finds exactly ours.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{paths.cni_conf_dir}"
"""


def cni_conflist(paths: NodePaths) -> str:
    bridge = {
        "type": "bridge",
        "bridge": BRIDGE,
        "isGateway": True,
        # Pods talk to each other, to Services and to the host only: no NAT to the outside.
        "ipMasq": False,
        # A pod reaching its own Service IP may be load-balanced back to itself.
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": POD_CIDR, "gateway": BRIDGE_IP}]],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": str(paths.cni_ipam_dir),
        },
    }
    portmap = {"type": "portmap", "capabilities": {"portMappings": True}}
    conflist = {"cniVersion": "1.0.0", "name": "coalmine", "plugins": [bridge, portmap]}
    return json.dumps(conflist, indent=2)


def kubelet_config(paths: NodePaths, ca_cert: Path, port: int, healthz_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": BRIDGE_IP,  # the apiserver reaches it here for logs and exec
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "protectKernelDefaults": False,
        "resolvConf": str(paths.resolv_conf),
        "podLogsDir": str(paths.pod_logs),
        "volumePluginDir": str(paths.workdir / "volume-plugins"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_cert)},
        },
        "authorization": {"mode": "Webhook"},
        # A dev machine's disk is shared with everything else: evict only when really full.
        "evictionHard": {
            "memory.available": "200Mi",
            "nodefs.available": "2%",
            "imagefs.available": "2%",
        },
        "imageGCHighThresholdPercent": 99,
        "imageGCLowThresholdPercent": 98,
        "serializeImagePulls": False,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
    }


def kubelet_argv(bin_dir: Path, paths: NodePaths, kubeconfig: Path, config: Path) -> list[str]:
    return [
        str(bin_dir / "kubelet"),
        f"--kubeconfig={kubeconfig}",
        f"--config={config}",
        f"--root-dir={paths.kubelet_root}",
        f"--cert-dir={paths.workdir / 'kubelet-pki'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={BRIDGE_IP}",
        "--v=1",
    ]


def kube_proxy_config(kubeconfig: Path, healthz_port: int, metrics_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",  # no IPVS in this kernel; nftables would do as well
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": NODE_NAME,
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        # 0: leave the host's conntrack table size alone.
        "conntrack": {"maxPerCore": 0, "min": 0},
        # Otherwise kube-proxy sets route_localnet=1 on the host for NodePorts on 127.0.0.1.
        "iptables": {"localhostNodePorts": False},
        "nodePortAddresses": [f"{BRIDGE_IP}/32"],
    }


def kube_proxy_argv(bin_dir: Path, config: Path, *, cleanup: bool = False) -> list[str]:
    argv = [str(bin_dir / "kube-proxy"), f"--config={config}", "--v=1"]
    return [*argv, "--cleanup"] if cleanup else argv


def scheduler_argv(bin_dir: Path, kubeconfig: Path, port: int, cert_dir: Path) -> list[str]:
    return [
        str(bin_dir / "kube-scheduler"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={cert_dir}",
        "--leader-elect=false",
        "--v=1",
    ]
