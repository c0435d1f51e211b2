#!/usr/bin/env bash
# Build the Kubernetes server binaries, kubectl and etcd from the Go module proxy into a cache
# keyed by the Kubernetes version, and print the bin dir on the last stdout line.
#
# Idempotent: a binary already in the cache is not rebuilt, so a second run is instant.
# No package registry reachable here ships kube-apiserver & co., hence building from source
# (see docs/cluster.md for the version choice and measured cost).
#
# Env: COALMINE_CACHE (default ~/.cache/coalmine), GOMODCACHE/GOCACHE (Go defaults persist),
#      BUILD_PARALLELISM (default 2: these machines have 2 cores and the links are memory-heavy),
#      EXTRA_KUBE_CMDS (e.g. "kubeadm", for e2e/kind/).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kube_mod="$here/kube"
etcd_mod="$here/etcd"

# The pinned versions live in the wrapper go.mod files; read them so there is one source of truth.
kube_version="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$kube_mod/go.mod")"
etcd_version="$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" {print $3}' "$etcd_mod/go.mod")"
[[ -n "$kube_version" && -n "$etcd_version" ]] || { echo "build.sh: cannot read versions" >&2; exit 1; }

cache_root="${COALMINE_CACHE:-$HOME/.cache/coalmine}"
bin_dir="$cache_root/kube-$kube_version/bin"
kube_cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
# EXTRA_KUBE_CMDS="kubeadm": also build these (the kind node image needs kubeadm; the
# single-node cluster does not, so it is not built by default).
read -r -a extra_cmds <<<"${EXTRA_KUBE_CMDS:-}"
kube_cmds+=("${extra_cmds[@]}")

missing_kube=()
for cmd in "${kube_cmds[@]}"; do
  [[ -x "$bin_dir/$cmd" ]] || missing_kube+=("$cmd")
done
need_etcd=0
[[ -x "$bin_dir/etcd" ]] || need_etcd=1

if (( ${#missing_kube[@]} == 0 && need_etcd == 0 )); then
  echo "$bin_dir"
  exit 0
fi

mkdir -p "$bin_dir"
# Two concurrent test runs must not both spend 20+ minutes building (or clobber each other).
exec 9>"$bin_dir/.build.lock"
flock 9

export CGO_ENABLED=0
export GOFLAGS="-trimpath -buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
jobs="${BUILD_PARALLELISM:-2}"
staging="$(mktemp -d "$bin_dir/.staging.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

kube_ldflags() {
  # Same variables as upstream hack/lib/version.sh sets, so `--version` and the apiserver's
  # /version report the real release instead of v0.0.0-master. The git commit is not knowable
  # offline (the proxy serves no VCS data), so it stays empty; the build date is the release
  # time the proxy records, which keeps the build reproducible.
  local minor build_date flags=() pkg key val
  minor="$(cut -d. -f2 <<<"$kube_version")"
  build_date="$(cd "$kube_mod" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    for kv in "gitVersion=$kube_version" "gitMajor=1" "gitMinor=$minor" "gitTreeState=clean" \
              "buildDate=$build_date"; do
      key="${kv%%=*}"; val="${kv#*=}"
      flags+=("-X $pkg.$key=$val")
    done
  done
  echo "-s -w ${flags[*]}"
}

# Re-check under the lock: another run may have finished the work while we waited.
missing_kube=()
for cmd in "${kube_cmds[@]}"; do
  [[ -x "$bin_dir/$cmd" ]] || missing_kube+=("$cmd")
done
[[ -x "$bin_dir/etcd" ]] && need_etcd=0

if (( ${#missing_kube[@]} > 0 )); then
  echo "build.sh: building ${missing_kube[*]} $kube_version (cold: see docs/cluster.md)" >&2
  pkgs=()
  for cmd in "${missing_kube[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$cmd"); done
  (cd "$kube_mod" && go build -p "$jobs" -ldflags "$(kube_ldflags)" -o "$staging/" "${pkgs[@]}")
fi

if (( need_etcd )); then
  echo "build.sh: building etcd $etcd_version" >&2
  # etcd's version is a constant of the module itself, so `etcd --version` is right unstamped.
  (cd "$etcd_mod" && go build -p "$jobs" -ldflags "-s -w" -o "$staging/etcd" .)
fi

# Move finished binaries in only at the end: an interrupted build never leaves a half binary
# that the idempotency check above would mistake for a finished one.
for f in "$staging"/*; do
  mv -f "$f" "$bin_dir/"
done
echo "$bin_dir"
