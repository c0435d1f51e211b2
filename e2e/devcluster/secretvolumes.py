"""Secret volumes for the kubelet stand-in, written the way the kubelet writes them.

The kubelet's atomic writer keeps a volume's files in a timestamped directory, points the
symlink ``..data`` at it and makes each file a symlink ``name -> ..data/name``. An update
writes a new directory and swaps ``..data`` with one rename, so a reader sees the old files
or the new ones, never a mix; a program that watches its file sees exactly what it would see
in a real pod. The stand-in copies a Secret in before the pod's containers start (a kubelet
keeps a pod without its Secret in ContainerCreating) and refreshes the copy when the Secret
changes, every ``SYNC_SECONDS`` (a kubelet: within about a minute).
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

SYNC_SECONDS = 2.0
DATA_LINK = "..data"


@dataclass
class SecretVolume:
    """One Secret volume of one pod, and the version of the Secret its files show."""

    secret: str
    directory: Path
    mode: int
    version: str | None = None


def secret_volumes(pod: dict[str, Any], workdir: Path) -> list[SecretVolume]:
    """The pod's Secret volumes, each in the directory the stand-in mounts for its name."""
    found = []
    for volume in pod["spec"].get("volumes", []):
        source = volume.get("secret")
        if source is not None:
            directory = workdir / "volumes" / volume["name"]
            mode = int(source.get("defaultMode", 0o644))
            found.append(SecretVolume(source["secretName"], directory, mode))
    return found


def sync(api: httpx.Client, namespace: str, volume: SecretVolume) -> bool:
    """Bring the volume's files up to the Secret's current version; False while the Secret
    does not exist (the files, if any, stay as they are, as under a kubelet)."""
    response = api.get(f"/api/v1/namespaces/{namespace}/secrets/{volume.secret}")
    if response.status_code == 404:
        return False
    response.raise_for_status()
    secret = response.json()
    version = secret["metadata"]["resourceVersion"]
    if version != volume.version:
        files = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        write_atomically(volume.directory, files, volume.mode)
        volume.version = version
    return True


def write_atomically(directory: Path, files: dict[str, bytes], mode: int) -> None:
    """Replace the volume's files in one rename, as the kubelet's atomic writer does."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.")
    fresh = Path(tempfile.mkdtemp(prefix=stamp, dir=directory))
    for name, content in files.items():
        (fresh / name).write_bytes(content)
        (fresh / name).chmod(mode & 0o777)
    link = directory / DATA_LINK
    old = link.readlink() if link.is_symlink() else None
    staged = directory / "..data_tmp"
    staged.unlink(missing_ok=True)
    staged.symlink_to(fresh.name)
    staged.rename(directory / DATA_LINK)
    for name in files:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(f"{DATA_LINK}/{name}")
    for entry in directory.iterdir():  # keys the Secret no longer has
        if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in files:
            entry.unlink()
    if old is not None:
        shutil.rmtree(directory / old, ignore_errors=True)
