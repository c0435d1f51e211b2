"""A Debian bookworm base image with Python 3.11, made locally with debootstrap.

It stands in for `python:3.11-slim`, which no registry here can serve: the project's
Dockerfiles take it through `--build-arg BASE_IMAGE=...`. Like that image it has `python`,
`python -m venv` and no PEP 668 marker. Cached by recipe hash: the archive is rebuilt only
when this file's recipe changes (about a minute), otherwise reused.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from e2e.devcluster.oci import write_image_archive

SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
IMAGE_CONFIG = {
    "Env": [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG=C.UTF-8",
    ],
    "Cmd": ["python3"],
}
# Shrinks the image by about a quarter without removing anything a Python program uses.
_TRIM = (
    "var/lib/apt/lists",
    "var/cache/apt",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
)


def debian_mirror() -> str:
    """The Debian mirror apt already uses here (the only package source this machine reaches)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return "http://deb.debian.org/debian"


def base_image_name() -> str:
    recipe = repr((SUITE, PACKAGES, IMAGE_CONFIG, _TRIM)).encode()
    return f"localhost/coalmine/python-base:3.11-{SUITE}-{hashlib.sha256(recipe).hexdigest()[:8]}"


def build_base_archive(cache_dir: Path) -> tuple[str, Path]:
    """(image name, OCI archive path), building the archive if it is not cached yet."""
    name = base_image_name()
    archive = cache_dir / f"{name.rsplit(':', 1)[1]}.oci.tar"
    if archive.is_file():
        return name, archive
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
             SUITE, str(rootfs), debian_mirror()],
            check=True, capture_output=True,
        )  # fmt: skip
        for relative in _TRIM:
            shutil.rmtree(rootfs / relative, ignore_errors=True)
        for marker in rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
            marker.unlink()
        layer = subprocess.run(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", "-", "."],
            check=True, capture_output=True,
        ).stdout  # fmt: skip
        staging = archive.with_suffix(".tmp")
        write_image_archive(staging, name, [layer], IMAGE_CONFIG)
        staging.replace(archive)
    return name, archive
