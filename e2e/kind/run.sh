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

# Pod IPs are not routable from the host on kind: requests go through the API server's
# service/pod proxy, and the test that runs Prometheus on the host skips itself.
COALMINE_E2E_KUBECONFIG="$kubeconfig" \
COALMINE_E2E_SERVING_IMAGE="$serving" \
COALMINE_E2E_OPERATOR_IMAGE="$operator" \
  "$python" -m pytest -m e2e "$root/e2e" "$@"
