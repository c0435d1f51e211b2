#!/usr/bin/env bash
# Install the Debian packages the single-node e2e cluster runs as plain processes, only when
# missing: containerd + runc (container runtime), CNI plugins (pod network), iptables and
# conntrack (kube-proxy), debootstrap (the base image), buildah (builds our Dockerfiles without
# a daemon or a registry), gcc (the static pause binary). Quiet and instant when all are there.
set -euo pipefail

wanted=(containerd runc containernetworking-plugins iptables conntrack debootstrap buildah
        gcc libc6-dev prometheus)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# crictl (CRI client: teardown removes pods through it, so CNI releases their addresses) has no
# Debian package; build it from the Go module proxy once, cached like the Kubernetes binaries.
crictl_version=v1.34.0
crictl_bin="${COALMINE_CACHE:-$HOME/.cache/coalmine}/crictl-${crictl_version}/bin"
if [[ ! -x "$crictl_bin/crictl" ]]; then
  echo "node-deps.sh: building crictl ${crictl_version} (about 2 minutes)" >&2
  mkdir -p "$crictl_bin"
  GOBIN="$crictl_bin" GOFLAGS=-mod=mod go install "sigs.k8s.io/cri-tools/cmd/crictl@${crictl_version}" >&2
fi

# Debian's prometheus (2.42+ds) is built without kubernetes_sd_configs (its client-go is not
# packaged), so the e2e tier's Prometheus, which discovers pods through the API server, is the
# same upstream project built from the Go module proxy (prometheus-build.sh: the version, the
# build tags, the cache; promtool for the chart's alert tests comes from there too).
bash "$(dirname "$0")/prometheus-build.sh" prometheus >/dev/null

(( ${#missing[@]} == 0 )) && exit 0

sudo=""
(( EUID == 0 )) || sudo="sudo"
echo "node-deps.sh: installing ${missing[*]}" >&2
$sudo apt-get update -qq >&2
# No systemd here, so no package starts a service; the harness runs containerd itself.
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >&2
