#!/usr/bin/env bash
# One command for the serving benchmarks (B1-B3). Needs Debian's wrk (apt-get install wrk) and
# taskset (util-linux); MLServer is installed into its own venv under ~/.cache/coalmine-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
PY="${PYTHON:-.venv/bin/python}"
exec "$PY" -m bench.serving "$@"
