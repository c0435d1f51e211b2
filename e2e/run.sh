#!/usr/bin/env bash
# Run the e2e tier on a single-node cluster started on this machine (root needed: it creates a
# bridge, iptables rules and cgroups, all removed afterwards). Everything is cached under
# ${COALMINE_CACHE:-~/.cache/coalmine}; the first run builds Kubernetes, crictl and the images.
#
#   e2e/run.sh [pytest args...]
# To run the suite against another cluster instead: COALMINE_E2E_KUBECONFIG=... (docs/e2e.md).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
cd "$root"
e2e/cluster/install-deps.sh
e2e/cluster/node-deps.sh
e2e/cluster/build.sh >/dev/null
charts/install-helm.sh >/dev/null
# Outside pytest: a cold image build takes minutes; inside a test it would count against the
# per-test timeout. Warm, this is a few seconds.
"$python" -m e2e.devcluster.images
# e2e/conftest.py runs the demo and node-teardown tests first: they build and remove node
# clusters of their own, which must not overlap the suite's shared one (started by the first
# test that needs it).
exec "$python" -m pytest -m e2e e2e "$@"
