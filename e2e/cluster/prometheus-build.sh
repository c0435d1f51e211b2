#!/usr/bin/env bash
# Build one command of the upstream Prometheus project (prometheus or promtool) from the Go
# module proxy into the cache, once, and print its path. The e2e tier's Prometheus
# (node-deps.sh) and the chart tests' promtool (make test-deps) come from here, so both are the same
# release built the same way.
#
# v0.316.0 = Prometheus 3.16.0. Kubernetes discovery only (file and HTTP discovery are always
# in): the build tags leave out every other discoverer and its cloud SDK (1275 packages instead
# of 1518, a 109 MB prometheus instead of 147 MB). The cache dir is named after the tags, so an
# older build with every discoverer is never taken for it.
#
# Usage: prometheus-build.sh prometheus|promtool     Env: COALMINE_CACHE, GOMODCACHE, GOCACHE.
set -euo pipefail

cmd="${1:?usage: prometheus-build.sh prometheus|promtool}"
case "$cmd" in prometheus|promtool) ;; *) echo "prometheus-build.sh: not a command we build: $cmd" >&2; exit 2 ;; esac

prom_version=v0.316.0
prom_tags=remove_all_sd,enable_kubernetes_sd
prom_bin="${COALMINE_CACHE:-$HOME/.cache/coalmine}/prometheus-${prom_version}-k8ssd/bin"
if [[ ! -x "$prom_bin/$cmd" ]]; then
  command -v go >/dev/null || { echo "prometheus-build.sh: $cmd needs a Go toolchain to build" >&2; exit 1; }
  echo "prometheus-build.sh: building $cmd ${prom_version} (a few minutes the first time)" >&2
  mkdir -p "$prom_bin"
  # Into a scratch dir, then one rename: a concurrent run never sees a half-written binary.
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  GOBIN="$work" GOFLAGS=-mod=mod go install -tags "$prom_tags" \
    "github.com/prometheus/prometheus/cmd/${cmd}@${prom_version}" >&2
  mv "$work/$cmd" "$prom_bin/$cmd.tmp.$$" && mv "$prom_bin/$cmd.tmp.$$" "$prom_bin/$cmd"
fi
echo "$prom_bin/$cmd"
