"""Safe extraction of model archives (tar, tar.gz, zip).

Refuses, before writing anything: absolute paths and ``..`` (path traversal / zip-slip), links
that point outside the target, device files, too many members, and more uncompressed bytes than
allowed (decompression bombs). Member sizes come from the archive headers, which extraction
cannot exceed: tar writes exactly the header size, and zipfile stops at the declared size and
then fails the CRC check.
"""

from __future__ import annotations

import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from coalmine_serving.errors import ArtifactError


@dataclass(frozen=True)
class ExtractLimits:
    max_members: int = 10_000
    """Most entries in one archive."""
    max_total_bytes: int = 20 * 1024**3
    """Most uncompressed bytes over all members."""
    max_ratio: float = 200.0
    """Most uncompressed/compressed ratio for a zip member (a bomb compresses ~1000:1)."""


def is_archive(path: Path) -> bool:
    return tarfile.is_tarfile(path) or zipfile.is_zipfile(path)


def extract(archive: Path, dest: Path, limits: ExtractLimits | None = None) -> list[Path]:
    """Extract ``archive`` into ``dest`` and return the regular files written."""
    limits = limits or ExtractLimits()
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        return _extract_zip(archive, dest.resolve(), limits)
    if tarfile.is_tarfile(archive):
        return _extract_tar(archive, dest.resolve(), limits)
    raise ArtifactError(f"{archive} is neither a tar nor a zip archive")


def _safe_target(dest: Path, name: str) -> Path:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or name.startswith("\\"):
        raise ArtifactError(f"archive member {name!r} escapes the target directory")
    target = (dest / pure).resolve()
    if not target.is_relative_to(dest):
        raise ArtifactError(f"archive member {name!r} escapes the target directory")
    return target


def _check_totals(count: int, total: int, limits: ExtractLimits) -> None:
    if count > limits.max_members:
        raise ArtifactError(f"archive has more than {limits.max_members} members")
    if total > limits.max_total_bytes:
        raise ArtifactError(
            f"archive expands to more than {limits.max_total_bytes} bytes (decompression bomb?)"
        )


def _extract_tar(archive: Path, dest: Path, limits: ExtractLimits) -> list[Path]:
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        _check_totals(len(members), sum(m.size for m in members if m.isfile()), limits)
        files = []
        for member in members:
            target = _safe_target(dest, member.name)
            if member.issym() or member.islnk():
                _check_link(dest, target, member)
            elif not (member.isfile() or member.isdir()):
                raise ArtifactError(f"archive member {member.name!r} is a device, fifo or special")
            if member.isfile():
                files.append(target)
        # Python's "data" filter is a second line of defence: it also strips modes and owners.
        tar.extractall(dest, filter="data")
    return files


def _check_link(dest: Path, target: Path, member: tarfile.TarInfo) -> None:
    link = PurePosixPath(member.linkname)
    base = target.parent if member.issym() else dest
    resolved = (base / link).resolve() if not link.is_absolute() else Path(link)
    if link.is_absolute() or not resolved.is_relative_to(dest):
        raise ArtifactError(f"link {member.name!r} -> {member.linkname!r} escapes the directory")


def _extract_zip(archive: Path, dest: Path, limits: ExtractLimits) -> list[Path]:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        _check_totals(len(infos), sum(i.file_size for i in infos), limits)
        files = []
        for info in infos:
            target = _safe_target(dest, info.filename)
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > 1024 * 1024 and ratio > limits.max_ratio:
                raise ArtifactError(
                    f"zip member {info.filename!r} compresses {ratio:.0f}:1 (decompression bomb?)"
                )
            if not info.is_dir():
                files.append(target)
        for info in infos:
            zf.extract(info, dest)
    return files
