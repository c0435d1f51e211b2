#!/usr/bin/env bash
# The Debian packages the kind tier needs beyond the single node's (e2e/cluster/node-deps.sh):
# a Docker engine (docker.io) for kind's node containers, capsh and jq for runc-capfilter.
# Only when missing; quiet and instant when they are there. Root.
#
# Installed so that nothing starts: Debian's docker.io starts the system dockerd on install
# (and enables it for boot), and that dockerd sets the iptables FORWARD policy to DROP and adds
# its own bridge, which breaks the single-node cluster on the same machine. The kind tier runs
# a private engine of its own instead (e2e/kind/dockerd.sh).
set -euo pipefail

wanted=(docker.io libcap2-bin jq)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
(( ${#missing[@]} == 0 )) && exit 0

log() { echo "kind/deps.sh: $*" >&2; }
log "installing ${missing[*]} (no service started)"
# invoke-rc.d asks policy-rc.d whether it may start a service; 101 = no. Keep one that is there
# already (container images often ship it), else put ours there for the install only.
guard=""
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  guard=/usr/sbin/policy-rc.d
  printf '#!/bin/sh\n# e2e/kind/deps.sh: no service starts during this install\nexit 101\n' > "$guard"
  chmod 0755 "$guard"
  trap 'rm -f "$guard"' EXIT
fi
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
# Nor at the next boot (systemd machines): works offline, it only removes the unit links.
if command -v systemctl >/dev/null; then
  systemctl --no-reload disable docker.service docker.socket >/dev/null 2>&1 || true
fi
[[ "$(iptables -S FORWARD | head -1)" == "-P FORWARD ACCEPT" ]] \
  || log "WARNING: the iptables FORWARD policy is no longer ACCEPT (did a system dockerd start?)"
