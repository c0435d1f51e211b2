#!/usr/bin/env bash
# Build a kind node image from what this machine reaches (Debian mirror, Go module proxy), with
# no registry pull, and print its name on the last stdout line. Needs root and the private
# Docker engine (`eval "$(e2e/kind/dockerd.sh start)"`).
#
#   1. base image: debootstrap bookworm + kind's images/base files (systemd, containerd 1.6,
#      runc, CNI plugins from Debian; crictl from the Go proxy), like kind's base Dockerfile;
#   2. the images the node runs, named as kubeadm asks for them: kube-apiserver,
#      -controller-manager, -scheduler (FROM scratch + our cached binaries), kube-proxy (the
#      base rootfs + binary: it needs iptables), etcd (our etcd build), coredns (Go proxy),
#      pause (gcc -static, the same source as the single node's);
#   3. the node image: what `kind build node-image` does (kubeadm, kubelet, kubectl in
#      /usr/bin, /kind/version, the images imported into the node's containerd), done here
#      because kind's builder calls `ctr info` and `ctr import --label`, which containerd 1.6
#      lacks, and pulls kindnetd, which no reachable source has (see docs/e2e.md, "kind").
#
# Each image is named by a hash of its inputs, so a second run finds them all and returns.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/e2e/kind"
cache_root="${COALMINE_CACHE:-$HOME/.cache/coalmine}"
kind_version=v0.33.0
coredns_version=v1.13.1   # kubeadm v1.35's CoreDNSVersion
pause_tag=3.10.1          # kubeadm v1.35's PauseVersion
etcd_tag=3.6.6-0          # kubeadm v1.35's DefaultEtcdVersion; the binary is our etcd 3.6.16
suite=bookworm
base_packages=systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,bash,ca-certificates,curl,jq,procps,containerd,runc,containernetworking-plugins

log() { echo "kind/build.sh: [$SECONDS s] $*" >&2; }   # seconds since the start: the cold times
docker version >/dev/null 2>&1 || { log "no Docker engine: eval \"\$(e2e/kind/dockerd.sh start)\""; exit 1; }
has_image() { docker image inspect "$1" >/dev/null 2>&1; }

# --- tools, each cached by version -----------------------------------------------------------
kind_bin="$cache_root/kind-$kind_version/bin"
if [[ ! -x "$kind_bin/kind" ]]; then
  log "building kind $kind_version"
  mkdir -p "$kind_bin"
  GOBIN="$kind_bin" CGO_ENABLED=0 go install "sigs.k8s.io/kind@$kind_version" >&2
fi
kind_src="$(cd "$root" && GOFLAGS=-mod=mod go env GOMODCACHE)/sigs.k8s.io/kind@$kind_version"
[[ -d "$kind_src/images/base/files" ]] || (cd /tmp && go mod download "sigs.k8s.io/kind@$kind_version")
kube_bin="$(EXTRA_KUBE_CMDS=kubeadm bash "$root/e2e/cluster/build.sh" | tail -1)"
kube_version="$("$kube_bin/kubeadm" version -o short)"
log "Kubernetes $kube_version binaries with kubeadm ready"
bash "$root/e2e/cluster/node-deps.sh" >&2   # crictl, debootstrap, containerd (for `ctr oci spec`)
crictl="$cache_root/crictl-v1.34.0/bin/crictl"
# Contents only: the file names (a temporary dir, /dev/fd/N) differ from run to run.
recipe_hash() { cat "$@" | sha256sum | cut -c1-12; }
work="$(mktemp -d "${TMPDIR:-/tmp}/kind-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# --- 1. base image ---------------------------------------------------------------------------
# The recipe: this section of this script (not the whole file, so that a change elsewhere
# does not redo the debootstrap), the versions and crictl.
{ echo "$suite $base_packages $kind_version"; sed -n '/^# --- 1. base/,/^# --- 2\./p' "$here/build.sh"; } > "$work/base.recipe"
base="coalmine/kind-base:$suite-$(recipe_hash "$work/base.recipe" "$crictl")"
if ! has_image "$base"; then
  log "building $base (debootstrap)"
  rootfs="$work/rootfs"
  mirror="$(cd "$root" && python3 -c 'from e2e.devcluster.baseimage import debian_mirror; print(debian_mirror())')"
  debootstrap --variant=minbase --include="$base_packages" "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  files="$kind_src/images/base/files"
  install -m 0755 "$files"/usr/local/bin/* "$rootfs/usr/local/bin/"
  mkdir -p "$rootfs/kind/bin" "$rootfs/LICENSES" "$rootfs/etc/systemd/system/kubelet.service.d"
  install -m 0644 "$files"/kind/README.txt "$rootfs/kind/"
  install -m 0755 "$files"/kind/bin/* "$rootfs/kind/bin/"
  install -m 0644 "$files"/LICENSES/* "$rootfs/LICENSES/"
  install -m 0644 "$files"/etc/crictl.yaml "$rootfs/etc/"
  mkdir -p "$rootfs/etc/containerd" && install -m 0644 "$files"/etc/containerd/* "$rootfs/etc/containerd/"
  install -m 0644 "$files"/etc/default/* "$rootfs/etc/default/"
  install -m 0644 "$files"/etc/sysctl.d/* "$rootfs/etc/sysctl.d/"
  install -m 0644 "$files"/etc/systemd/system/*.service "$files"/etc/systemd/system/*.slice "$rootfs/etc/systemd/system/"
  install -m 0644 "$files"/etc/systemd/system/kubelet.service.d/* "$rootfs/etc/systemd/system/kubelet.service.d/"
  # kind's unit files and scripts expect its own builds in /usr/local and /opt/cni/bin; Debian's
  # packages put the same programs in /usr/bin, /usr/sbin and /usr/lib/cni.
  for b in containerd containerd-shim-runc-v2 ctr; do ln -sf "/usr/bin/$b" "$rootfs/usr/local/bin/$b"; done
  ln -sf /usr/sbin/runc "$rootfs/usr/local/sbin/runc"
  mkdir -p "$rootfs/opt/cni" && ln -sfn /usr/lib/cni "$rootfs/opt/cni/bin"
  install -m 0755 "$crictl" "$rootfs/usr/local/bin/crictl"
  # Root here has no CAP_SYS_RESOURCE (nor do the node containers), so the CRI must not ask for
  # negative oom_score_adj (the single node's quirk too). No fuse-overlayfs (rootless only).
  sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' "$rootfs/etc/containerd/config.toml"
  sed -i "s|registry.k8s.io/pause:3.10\"|registry.k8s.io/pause:$pause_tag\"|" "$rootfs/etc/containerd/config.toml"
  python3 - "$rootfs/etc/containerd/config.toml" <<'PY'
import re, sys
p = sys.argv[1]; s = open(p).read()
s = re.sub(r'\[proxy_plugins\].*?(?=\n\[plugins)', '', s, flags=re.S)  # fuse-overlayfs: rootless only
open(p, "w").write(s)
PY
  ctr oci spec \
    | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
    | jq 'del(.process.rlimits)' > "$rootfs/etc/containerd/cri-base.json"
  chroot "$rootfs" /bin/sh -euc '
    find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete
    rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
      /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
      /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
    echo "ReadKMsg=no" >> /etc/systemd/journald.conf
    ln -sf /usr/lib/systemd/systemd /sbin/init
    systemctl enable kubelet.service containerd.service undo-mount-hacks.service
    systemctl mask systemd-binfmt.service
    mkdir -p /etc/kubernetes/manifests
    apt-get clean
    rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/* /tmp/* /var/tmp/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/*' >&2
  : > "$rootfs/etc/machine-id"
  tar --numeric-owner --xattrs -C "$rootfs" -cf - . \
    | docker import --change 'ENV container=docker' \
        --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' - "$base" >&2
  rm -rf "$rootfs"
fi

# --- 2. the images the node runs -------------------------------------------------------------
log "base image ready"
coredns_bin="$cache_root/coredns-$coredns_version/bin"
if [[ ! -x "$coredns_bin/coredns" ]]; then
  log "building coredns $coredns_version (a few minutes cold)"
  mkdir -p "$coredns_bin"
  GOBIN="$coredns_bin" CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" \
    go install -ldflags "-s -w" "github.com/coredns/coredns@$coredns_version" >&2
fi
log "coredns ready"

# A one-binary image: FROM scratch, the binary in /usr/local/bin, PATH set (kubeadm's static
# pods run `kube-apiserver ...`, not a path).
# No USER: kubeadm adds NET_BIND_SERVICE to CoreDNS, which a non-root process gets only from
# file capabilities (upstream sets them); as 65532 it failed "listen tcp :53: permission denied".
binary_image() {  # name binary [extra --change args...]
  local name="$1" binary="$2"; shift 2
  local recipe
  recipe="$(recipe_hash "$binary" <(echo "$@"))"   # the name alone would keep a stale image
  [[ "$(docker image inspect -f '{{index .Config.Labels "coalmine.recipe"}}' "$name" 2>/dev/null)" == "$recipe" ]] \
    && return 0
  local dir="$work/img-$(basename "$binary")"
  mkdir -p "$dir/usr/local/bin" "$dir/tmp" "$dir/etc"
  chmod 1777 "$dir/tmp"
  install -m 0755 "$binary" "$dir/usr/local/bin/"
  echo 'nobody:x:65534:65534:nobody:/:/sbin/nologin' > "$dir/etc/passwd"
  tar --numeric-owner --owner=0 --group=0 -C "$dir" -cf - . \
    | docker import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
        --change "LABEL coalmine.recipe=$recipe" "$@" - "$name" >&2
}
images=()
for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
  binary_image "registry.k8s.io/$cmd:$kube_version" "$kube_bin/$cmd"
  images+=("registry.k8s.io/$cmd:$kube_version")
done
binary_image "registry.k8s.io/etcd:$etcd_tag" "$kube_bin/etcd"
binary_image "registry.k8s.io/coredns/coredns:$coredns_version" "$coredns_bin/coredns" \
  --change 'ENTRYPOINT ["/usr/local/bin/coredns"]'
images+=("registry.k8s.io/etcd:$etcd_tag" "registry.k8s.io/coredns/coredns:$coredns_version")
(cd "$root" && python3 -c 'from e2e.devcluster.pause import PAUSE_C; print(PAUSE_C)') > "$work/pause.c"
gcc -static -Os -s -o "$work/pause" "$work/pause.c"
binary_image "registry.k8s.io/pause:$pause_tag" "$work/pause" \
  --change 'ENTRYPOINT ["/usr/local/bin/pause"]' --change 'USER 65535:65535'
images+=("registry.k8s.io/pause:$pause_tag")
proxy="registry.k8s.io/kube-proxy:$kube_version"
proxy_id="$(recipe_hash "$kube_bin/kube-proxy" <(echo "$base"))"
if [[ "$(docker image inspect -f '{{index .Config.Labels "coalmine.recipe"}}' "$proxy" 2>/dev/null)" != "$proxy_id" ]]; then
  mkdir -p "$work/proxy" && cp "$kube_bin/kube-proxy" "$work/proxy/"
  printf 'FROM %s\nCOPY kube-proxy /usr/local/bin/kube-proxy\nLABEL coalmine.recipe=%s\nENTRYPOINT []\n' \
    "$base" "$proxy_id" > "$work/proxy/Dockerfile"
  docker build -q -t "$proxy" "$work/proxy" >&2
fi
images+=("$proxy")

# --- 3. the node image -----------------------------------------------------------------------
ids="$(for i in "$base" "${images[@]}"; do docker image inspect -f '{{.Id}}' "$i"; done)"
node="coalmine/kind-node:$kube_version-$(recipe_hash <(echo "$ids") "$kube_bin/kubeadm" "$kube_bin/kubelet" "$kube_bin/kubectl")"
if ! has_image "$node"; then
  log "building $node"
  c="kind-build-$$"
  docker run -d --name "$c" --network none --security-opt seccomp=unconfined --entrypoint sleep "$base" infinity >&2
  trap 'docker rm -f -v "$c" >/dev/null 2>&1; rm -rf "$work"' EXIT
  for b in kubeadm kubelet kubectl; do docker cp "$kube_bin/$b" "$c:/usr/bin/$b"; done
  docker exec "$c" sh -c "chown root:root /usr/bin/kube*; chmod 0755 /usr/bin/kube*; echo $kube_version > /kind/version; mkdir -p /kind/manifests"
  docker exec "$c" bash -c 'nohup containerd >/dev/null 2>&1 & for i in $(seq 1 50); do ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1'
  docker save "${images[@]}" | docker exec -i "$c" ctr --namespace=k8s.io images import --all-platforms --no-unpack --digests - >&2
  for i in "${images[@]}"; do
    docker exec "$c" ctr --namespace=k8s.io images label "$i" io.cri-containerd.pinned=pinned >/dev/null
  done
  docker exec "$c" pkill containerd
  sleep 1
  docker commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' "$c" "$node" >&2
fi
log "node image ready"
echo "$node"
