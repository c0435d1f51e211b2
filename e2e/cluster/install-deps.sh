#!/usr/bin/env bash
# Install the Debian packages the integration tests run as plain processes, only when missing.
# Quiet and instant when everything is already there; `apt-get update` only when needed.
set -euo pipefail

wanted=(
  prometheus  # the Prometheus fixture (e2e.devcluster.prometheus)
  chromium    # headless, opens `kubectl coalmine dashboard` (tests/coalmine/integration/test_dashboard.py)
  fonts-dejavu-core  # chromium recommends fonts but does not depend on any: text for its screenshots
)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
(( ${#missing[@]} == 0 )) && exit 0

sudo=""
(( EUID == 0 )) || sudo="sudo"
echo "install-deps.sh: installing ${missing[*]}" >&2
$sudo apt-get update -qq >&2
# With systemd, Debian's package also starts a service on :9090; the tests ignore it and run
# their own instance on a free loopback port.
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
