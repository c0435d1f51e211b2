#!/usr/bin/env bash
# The coalmine e2e suite on a three-node kind cluster built here (docs/e2e.md, "kind"): a
# private Docker engine, the node image from e2e/kind/build.sh (no registry pull), the cluster,
# its pod network (e2e/kind/cni.sh), our images `kind load`ed, routes from this machine to the
# pods and Services, then `pytest -m e2e e2e/` against it. Root.
#
#   e2e/kind/run.sh [pytest args...]   KEEP_CLUSTER=1 keeps the cluster (and the lock's
#                                      reason to exist: remove it with `e2e/kind/run.sh down`)
#   e2e/kind/run.sh up                 cluster only, kept; prints the kubeconfig path
#   e2e/kind/run.sh down               delete the cluster, routes, stop the Docker engine
#
# It may run beside single-node runs (e2e/run.sh) on one machine: other address ranges, a
# Docker engine that leaves iptables alone, a buildah store of its own (docs/e2e.md, "kind").
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/e2e/kind"
name="${KIND_CLUSTER_NAME:-coalmine-e2e}"
python="${PYTHON:-$root/.venv/bin/python}"
cache_root="${COALMINE_CACHE:-$HOME/.cache/coalmine}"
state="${KIND_STATE:-/tmp/coalmine-kind}"
kubeconfig="$state/kubeconfig"
pod_subnet=10.245.0.0/16      # networking.podSubnet in cluster.yaml
service_subnet=10.97.0.0/16   # networking.serviceSubnet in cluster.yaml
# Our two images are built in a buildah store of their own: the single-node runs' store names
# its work image `<repository>:building` and untags every older build, so two runs sharing one
# store (the machine is shared) could push each other's images. The base archive is shared.
images_dir="${KIND_IMAGES:-$cache_root/kind/images}"
export PATH="$cache_root/kind-v0.33.0/bin:$cache_root/kube-v1.35.4/bin:$PATH"
cd "$root"
[[ "${1:-}" == down ]] || "$here/deps.sh"
eval "$("$here/dockerd.sh" start)"
mkdir -p "$state"

log() { echo "kind/run.sh: $*" >&2; }

down() {
  kind delete cluster --name "$name" >&2 || true
  docker network rm kind >/dev/null 2>&1 || true   # its bridge outlives the engine otherwise
  ip route show | awk -v p="$pod_subnet" -v s="$service_subnet" \
    '$1 == s || index($1, substr(p, 1, 7)) == 1 {print $1}' \
    | while read -r cidr; do ip route del "$cidr" 2>/dev/null || true; done
  "$here/dockerd.sh" stop
  [[ "$(iptables -S FORWARD | head -1)" == "-P FORWARD ACCEPT" ]] \
    || log "WARNING: iptables FORWARD policy is no longer ACCEPT"
}

up() {
  local node start
  start=$SECONDS
  node="$("$here/build.sh" | tail -1)"
  log "node image $node ($((SECONDS - start)) s)"
  start=$SECONDS
  if ! kind get clusters 2>/dev/null | grep -qx "$name"; then
    kind create cluster --name "$name" --image "$node" --config "$here/cluster.yaml" >&2
  fi
  kind get kubeconfig --name "$name" > "$kubeconfig"
  "$here/cni.sh" "$name" "$kubeconfig" >&2
  kubectl --kubeconfig "$kubeconfig" wait --for=condition=Ready node --all --timeout=180s >&2
  kubectl --kubeconfig "$kubeconfig" -n kube-system rollout status deploy/coredns --timeout=180s >&2
  # This machine routes to the pods (each node's podCIDR via that node) and the Services (via
  # the control-plane node, whose kube-proxy DNATs them).
  local n ip cidr cp_ip=""
  for n in $(kind get nodes --name "$name"); do
    ip="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$n")"
    cidr="$(kubectl --kubeconfig "$kubeconfig" get node "$n" -o jsonpath='{.spec.podCIDR}')"
    ip route replace "$cidr" via "$ip"
    [[ "$n" == *-control-plane ]] && cp_ip="$ip"
  done
  ip route replace "$service_subnet" via "$cp_ip"
  log "cluster Ready ($((SECONDS - start)) s)"
}

load_images() {
  local image archive
  mkdir -p "$images_dir"
  ln -f "$cache_root"/images/*.oci.tar "$images_dir/" 2>/dev/null || true   # the base archive
  "$python" -m e2e.devcluster.images "$images_dir" > "$state/images"   # serving, then operator
  local node missing
  while read -r image; do
    # The tag is the image id, so a node that has the name has the image (a kept cluster):
    # load only where it is missing.
    missing=()
    for node in $(kind get nodes --name "$name"); do
      docker exec "$node" crictl inspecti "$image" >/dev/null 2>&1 || missing+=("$node")
    done
    (( ${#missing[@]} > 0 )) || continue
    archive="$state/$(basename "${image%%:*}").tar"
    rm -f "$archive"
    buildah --root="$images_dir/buildah/root" --runroot="$images_dir/buildah/runroot" \
      --storage-driver=overlay push -q "$image" "docker-archive:$archive:$image" >&2
    kind load image-archive --name "$name" --nodes "$(IFS=,; echo "${missing[*]}")" "$archive" >&2
    rm -f "$archive"
  done < "$state/images"
}

case "${1:-}" in
  down) down; exit 0 ;;
  up) up; echo "$kubeconfig"; exit 0 ;;
esac

e2e/cluster/install-deps.sh   # as e2e/run.sh: chromium for the views test
charts/install-helm.sh >/dev/null
[[ -n "${KEEP_CLUSTER:-}" ]] || trap down EXIT
up
start=$SECONDS
load_images
log "images loaded ($((SECONDS - start)) s)"
gateway="$(docker network inspect kind -f '{{range .IPAM.Config}}{{.Gateway}} {{end}}' \
  | tr ' ' '\n' | grep -m1 '\.')"
COALMINE_E2E_KUBECONFIG="$kubeconfig" \
COALMINE_E2E_SERVING_IMAGE="$(sed -n 1p "$state/images")" \
COALMINE_E2E_OPERATOR_IMAGE="$(sed -n 2p "$state/images")" \
COALMINE_E2E_ROUTABLE=1 \
COALMINE_E2E_HOST_ADDRESS="$gateway" \
  "$python" -m pytest -m e2e "$root/e2e" "$@"
