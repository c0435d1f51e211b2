"""Checksums of artifacts, computed before anything parses them."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from coalmine_serving.errors import ArtifactError

_CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so a large artifact never sits in memory twice."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str | None, *, required: bool = True) -> str:
    """Return the file's sha256, raising if it differs from ``expected``.

    Returns the actual digest so it can be exported as the ``sha256`` label of model_info.
    """
    if not path.is_file():
        raise ArtifactError(f"artifact {path} does not exist or is not a regular file")
    actual = sha256_file(path)
    if expected is None:
        if required:
            raise ArtifactError(
                "no sha256 given for the artifact; set --sha256 (or require_sha256=false for "
                "local experiments only)"
            )
        return actual
    if not hmac.compare_digest(actual, expected.lower()):
        raise ArtifactError(
            f"sha256 mismatch for {path}: expected {expected.lower()}, got {actual}"
        )
    return actual
