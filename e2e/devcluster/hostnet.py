"""Host-side plumbing of the node: the pod bridge, sysctls, and cleaning up after it all.

Everything here touches only what the node created: the bridge it named, iptables chains named
KUBE-* / CNI-* (kube-proxy, kubelet and the CNI plugins), network namespaces under the node's
own state dir, and the kubelet's `kubepods` cgroups.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
from pathlib import Path

from e2e.devcluster.nodeconfig import BRIDGE, BRIDGE_IP, POD_CIDR

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Forwarding between pods and the host; bridged traffic must traverse iptables, or a pod's
# request to a ClusterIP never meets kube-proxy's DNAT when the answer comes from the same bridge.
SYSCTLS = {
    "net/ipv4/ip_forward": "1",
    "net/bridge/bridge-nf-call-iptables": "1",
    "net/bridge/bridge-nf-call-ip6tables": "1",
}
OUR_CHAIN_PREFIXES = ("KUBE-", "CNI-")


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def create_bridge() -> None:
    """Create the pod bridge with the gateway address up front, so the apiserver can advertise
    BRIDGE_IP before any pod exists (the CNI bridge plugin adopts an existing bridge)."""
    if _run("ip", "link", "show", BRIDGE, check=False).returncode != 0:
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
    prefix = POD_CIDR.split("/")[1]
    addresses = _run("ip", "-o", "-4", "addr", "show", "dev", BRIDGE).stdout
    if f"{BRIDGE_IP}/{prefix}" not in addresses:
        _run("ip", "addr", "add", f"{BRIDGE_IP}/{prefix}", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    for key, value in SYSCTLS.items():
        Path("/proc/sys", key).write_text(value)


def delete_bridge() -> None:
    if _run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
        _run("ip", "link", "delete", BRIDGE)


def remove_iptables_chains() -> None:
    """Delete every KUBE-*/CNI-* chain and the rules in built-in chains that jump to them."""
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            _remove_chains(tool, table)


def _remove_chains(tool: str, table: str) -> None:
    saved = _run(f"{tool}-save", "-t", table, check=False).stdout.splitlines()
    ours = [line[1:].split()[0] for line in saved if line.startswith(":") and _is_ours(line[1:])]
    for line in saved:
        if not line.startswith("-A "):
            continue
        words = shlex.split(line)  # iptables-save quotes comments the way a shell would
        chain, rule = words[1], words[2:]
        target = rule[rule.index("-j") + 1] if "-j" in rule else ""
        if not _is_ours(chain) and _is_ours(target):
            _run(tool, "-t", table, "-D", chain, *rule, check=False)
    for chain in ours:
        _run(tool, "-t", table, "-F", chain, check=False)
    for chain in ours:
        _run(tool, "-t", table, "-X", chain, check=False)


def _is_ours(chain: str) -> bool:
    return chain.startswith(OUR_CHAIN_PREFIXES)


def remove_kubepods_cgroups() -> None:
    """Remove the kubelet's cgroup trees (children first: rmdir only works on empty leaves)."""
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / "kubepods"
        if not top.is_dir():
            continue
        for directory in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if directory.is_dir():
                with contextlib.suppress(OSError):
                    directory.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()
