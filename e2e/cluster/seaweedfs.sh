#!/usr/bin/env bash
# Build SeaweedFS's `weed` (an S3-compatible object store, Apache-2.0) from the Go module proxy
# into a cache keyed by its version, and print the bin dir on the last stdout line. The
# integration tier starts it on loopback as the real S3 server behind `s3://` model URIs.
#
# Idempotent: a binary already in the cache is not rebuilt, so a second run is instant.
# The pin is a pseudo-version (a commit), read from the wrapper module's go.mod (one source of
# truth); `go install weed@version` is refused because of a replace directive, see that go.mod.
# Env: COALMINE_CACHE (default ~/.cache/coalmine), BUILD_PARALLELISM (default 2).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod="$here/seaweedfs"
version="$(awk '$1 == "require" && $2 == "github.com/seaweedfs/seaweedfs" {print $3}' "$mod/go.mod")"
[[ -n "$version" ]] || { echo "seaweedfs.sh: cannot read the version" >&2; exit 1; }
bin_dir="${COALMINE_CACHE:-$HOME/.cache/coalmine}/seaweedfs-${version}/bin"
if [[ -x "$bin_dir/weed" ]]; then
  echo "$bin_dir"
  exit 0
fi

mkdir -p "$bin_dir"
# Two concurrent runs must not both spend minutes building (or clobber each other).
exec 9>"$bin_dir/.build.lock"
flock 9
if [[ ! -x "$bin_dir/weed" ]]; then
  echo "seaweedfs.sh: building weed ${version} (cold: several minutes, see docs/serving.md)" >&2
  staging="$(mktemp -d "$bin_dir/.staging.XXXXXX")"
  trap 'rm -rf "$staging"' EXIT
  # SeaweedFS asks for a newer Go than some machines have; let the go command fetch it.
  (cd "$mod" && GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" CGO_ENABLED=0 \
    GOFLAGS="-trimpath -buildvcs=false" \
    go build -p "${BUILD_PARALLELISM:-2}" -ldflags "-s -w" -o "$staging/weed" \
    github.com/seaweedfs/seaweedfs/weed) >&2
  # Moved in only when finished: an interrupted build never leaves a half binary.
  mv -f "$staging/weed" "$bin_dir/weed"
fi
echo "$bin_dir"
