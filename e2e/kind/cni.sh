#!/usr/bin/env bash
# The pod network of a kind cluster without kindnetd (no reachable source builds it): on each
# node the CNI configuration kindnetd would write (ptp + host-local over the node's podCIDR,
# Debian's CNI plugins), forwarding on, and a route to every other node's podCIDR via that
# node. Nodes share one Docker bridge, so plain routes are all kindnetd does here too.
#
#   e2e/kind/cni.sh <cluster name> <kubeconfig>
set -euo pipefail

name="$1"
kubeconfig="$2"
kubectl=(kubectl --kubeconfig "$kubeconfig")
command -v kubectl >/dev/null || kubectl=("${KUBECTL:?no kubectl on PATH}" --kubeconfig "$kubeconfig")

declare -A cidr ip
for node in $(kind get nodes --name "$name"); do
  for _ in $(seq 1 60); do
    cidr[$node]="$("${kubectl[@]}" get node "$node" -o jsonpath='{.spec.podCIDR}' 2>/dev/null || true)"
    [[ -n "${cidr[$node]}" ]] && break
    sleep 1
  done
  [[ -n "${cidr[$node]}" ]] || { echo "cni.sh: node $node has no podCIDR" >&2; exit 1; }
  ip[$node]="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$node")"
done

for node in "${!cidr[@]}"; do
  docker exec -i "$node" sh -euc '
    sysctl -qw net.ipv4.ip_forward=1
    mkdir -p /etc/cni/net.d
    cat > /etc/cni/net.d/10-kindnet.conflist.tmp
    mv /etc/cni/net.d/10-kindnet.conflist.tmp /etc/cni/net.d/10-kindnet.conflist' <<JSON
{
  "cniVersion": "0.4.0",
  "name": "kindnet",
  "plugins": [
    {"type": "ptp", "ipMasq": false, "mtu": 1500,
     "ipam": {"type": "host-local", "dataDir": "/run/cni-ipam-state",
              "routes": [{"dst": "0.0.0.0/0"}], "ranges": [[{"subnet": "${cidr[$node]}"}]]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
  for other in "${!cidr[@]}"; do
    [[ "$other" == "$node" ]] && continue
    docker exec "$node" ip route replace "${cidr[$other]}" via "${ip[$other]}"
  done
  echo "$node ${ip[$node]} ${cidr[$node]}"
done
