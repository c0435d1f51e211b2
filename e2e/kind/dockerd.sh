#!/usr/bin/env bash
# A private Docker engine for kind, started and stopped by hand:
#
#   e2e/kind/dockerd.sh start    # prints `export DOCKER_HOST=...` on its last line
#   e2e/kind/dockerd.sh stop
#
# Its own data root (in the cache, so built images survive), exec root and socket, and no
# iptables, no ip_forward change and no default bridge: the machine is shared with the
# single-node e2e cluster, whose bridge, kube-proxy rules and FORWARD policy (ACCEPT) Docker
# would otherwise change. The kind network's bridge is the only interface it makes. Its runc
# is runc-capfilter (privileged containers get only the capabilities root has here).
set -euo pipefail

cache_root="${COALMINE_CACHE:-$HOME/.cache/coalmine}"
data_root="$cache_root/kind/docker"
run_dir="${KIND_DOCKER_RUN:-/tmp/coalmine-kind-docker}"
sock="$run_dir/docker.sock"
export DOCKER_HOST="unix://$sock"

case "${1:-}" in
  start)
    mkdir -p "$data_root" "$run_dir"
    if ! docker version >/dev/null 2>&1; then
      setsid dockerd --data-root "$data_root" --exec-root "$run_dir/exec" \
        --pidfile "$run_dir/dockerd.pid" -H "$DOCKER_HOST" \
        --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
        --add-runtime "capfilter=$(cd "$(dirname "$0")" && pwd)/runc-capfilter" --default-runtime capfilter \
        >"$run_dir/dockerd.log" 2>&1 </dev/null &
      for _ in $(seq 1 60); do
        docker version >/dev/null 2>&1 && break
        sleep 0.5
      done
      docker version >/dev/null || { tail -20 "$run_dir/dockerd.log" >&2; exit 1; }
    fi
    echo "export DOCKER_HOST=$DOCKER_HOST"
    ;;
  stop)
    [[ -f "$run_dir/dockerd.pid" ]] || exit 0
    pid="$(cat "$run_dir/dockerd.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    rm -f "$run_dir/dockerd.pid"
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
