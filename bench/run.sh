#!/usr/bin/env bash
# One command for the serving benchmarks (B1-B5). Like every make target, it installs what it
# needs when missing: Debian's wrk (apt-get update once, then apt-get install); taskset comes
# with util-linux. MLServer is installed into its own venv under ~/.cache/coalmine-bench.
#   bench/run.sh [--seconds N --rounds N]    run the benchmarks (about 15 minutes)
#   bench/run.sh --only B4,B5 --seconds 5 --rounds 3
#                                            only the receipt cost and label ingestion (~3 min);
#                                            the report keeps the other sections as they are
#   bench/run.sh --deps-only                 only install what they need
set -euo pipefail
cd "$(dirname "$0")/.."

install_wrk() {
  command -v wrk >/dev/null && return 0
  local sudo=""
  if (( EUID != 0 )); then
    if ! command -v sudo >/dev/null; then
      echo "run.sh: wrk is missing and installing it needs root (no sudo here):" \
        "run this as root, or apt-get install wrk as root first" >&2
      exit 1
    fi
    echo "run.sh: not root: installing wrk with sudo" >&2
    sudo="sudo"
  fi
  echo "run.sh: installing wrk (Debian package)" >&2
  $sudo apt-get update -qq >&2
  # Waits for a concurrent apt (another make target installing its own packages) to finish.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 wrk >&2
}

install_wrk
[[ "${1:-}" == "--deps-only" ]] && exit 0
PY="${PYTHON:-.venv/bin/python}"
exec "$PY" -m bench.serving "$@"
