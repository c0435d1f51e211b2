#!/usr/bin/env bash
# Run the coalmine e2e suite on a kind cluster: create the cluster, build the images from the
# project's Dockerfiles, load them into kind, run `pytest -m e2e e2e/` against it.
# Needs Docker, kind and a Python venv with the project (`pip install -e '.[dev]'`).
# Does not run in the coalmine sandbox (no registry for kindest/node or python:3.11-slim);
# there, use e2e/run.sh, which runs the same suite on a single-node cluster made from parts.
#
#   e2e/kind/run.sh [pytest args...]      KEEP_CLUSTER=1 keeps the cluster afterwards.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
name="${KIND_CLUSTER_NAME:-coalmine-e2e}"
python="${PYTHON:-$root/.venv/bin/python}"
tag="e2e-$(git -C "$root" rev-parse --short HEAD)"
serving="coalmine/serving:$tag"
operator="coalmine/operator:$tag"

if ! kind get clusters | grep -qx "$name"; then
  kind create cluster --name "$name" --config "$root/e2e/kind/cluster.yaml" --wait 180s
fi
if [[ -z "${KEEP_CLUSTER:-}" ]]; then
  trap 'kind delete cluster --name "$name"' EXIT
fi
kubeconfig="$(mktemp)"
kind get kubeconfig --name "$name" > "$kubeconfig"

docker build -f "$root/serving/Dockerfile" -t "$serving" "$root"
docker build -f "$root/operator/Dockerfile" -t "$operator" "$root"
kind load docker-image --name "$name" "$serving" "$operator"

# The operator scenarios need both directions between this machine and the pods (see
# e2e/support/clusters.py): routes to the pod and Service ranges via the kind node (root, once
# per cluster), and the Docker network's gateway, which pods reach, for the model artifacts and
# Prometheus served from here. NO_ROUTES=1 skips the routes: those scenarios then skip too, and
# requests go through the API server's service/pod proxy.
routable=0
gateway=""
if [[ -z "${NO_ROUTES:-}" ]]; then
  node_ip="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' \
    "${name}-control-plane")"
  gateway="$(docker network inspect kind -f '{{range .IPAM.Config}}{{.Gateway}} {{end}}' \
    | tr ' ' '\n' | grep -m1 '\.')"
  sudo=""
  (( EUID == 0 )) || sudo="sudo"
  for cidr in 10.245.0.0/16 10.97.0.0/16; do  # podSubnet, serviceSubnet in cluster.yaml
    $sudo ip route replace "$cidr" via "$node_ip"
  done
  if [[ -z "${KEEP_CLUSTER:-}" ]]; then
    trap '$sudo ip route del 10.245.0.0/16 2>/dev/null; $sudo ip route del 10.97.0.0/16 \
      2>/dev/null; kind delete cluster --name "$name"' EXIT
  fi
  routable=1
fi

COALMINE_E2E_KUBECONFIG="$kubeconfig" \
COALMINE_E2E_SERVING_IMAGE="$serving" \
COALMINE_E2E_OPERATOR_IMAGE="$operator" \
COALMINE_E2E_ROUTABLE="$routable" \
COALMINE_E2E_HOST_ADDRESS="$gateway" \
  "$python" -m pytest -m e2e "$root/e2e" "$@"
