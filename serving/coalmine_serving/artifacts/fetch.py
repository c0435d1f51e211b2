"""Fetch a model artifact into a directory and verify its sha256 (for an init container).

Supports ``file://`` (or a plain path), ``http(s)://`` and ``s3://`` (``artifacts.s3``). The
bytes are hashed while they are written to a temporary file, and only a verified file is
renamed into place, so the serving container never sees a partial or tampered artifact.
``gs://`` and Azure are not supported yet and fail with a clear message. A URI appears in
messages only redacted (no userinfo, no query: presigned URLs carry their signature there).
Every failure carries a reason (``artifacts.reasons``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
from pathlib import Path
from typing import BinaryIO
from urllib.parse import ParseResult, unquote, urlparse

from coalmine_serving.artifacts import reasons
from coalmine_serving.artifacts.archive import ExtractLimits, extract, is_archive
from coalmine_serving.artifacts.s3 import S3Options
from coalmine_serving.contract import redact_text, redact_uri
from coalmine_serving.errors import ArtifactError

_CHUNK = 1024 * 1024
DEFAULT_MAX_BYTES = 20 * 1024**3


def fetch(
    uri: str,
    dest_dir: Path,
    sha256: str,
    *,
    filename: str | None = None,
    unpack: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = 60.0,
    s3: S3Options | None = None,
) -> Path:
    """Copy or download ``uri`` into ``dest_dir``; return the verified file (or the directory
    it was unpacked into when ``unpack`` is set and the file is an archive)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    parsed = urlparse(uri)
    name = filename or Path(unquote(parsed.path)).name or "model"
    if "/" in name or name in {".", ".."}:
        raise ArtifactError(f"bad target file name {name!r}")
    fd, tmp_name = tempfile.mkstemp(prefix=".fetch-", dir=dest_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _copy(parsed, uri, _HashingSink(out, max_bytes), timeout, s3)
        if not hmac.compare_digest(digest, sha256.lower()):
            raise ArtifactError(
                f"sha256 mismatch for {redact_uri(uri)}: expected {sha256.lower()}, got {digest}",
                reasons.CHECKSUM_MISMATCH,
            )
        final = dest_dir / name
        tmp.replace(final)
    finally:
        tmp.unlink(missing_ok=True)
    if unpack and is_archive(final):
        extract(final, dest_dir, ExtractLimits(max_total_bytes=max_bytes))
        return dest_dir
    return final


def _copy(
    parsed: ParseResult, uri: str, sink: _HashingSink, timeout: float, s3: S3Options | None
) -> str:
    scheme = parsed.scheme
    if scheme in ("", "file"):
        path = Path(unquote(parsed.path)) if scheme else Path(uri)
        with path.open("rb") as src:
            while chunk := src.read(_CHUNK):
                sink.write(chunk)
    elif scheme in ("http", "https"):
        _download(uri, sink, timeout)
    elif scheme == "s3":
        from coalmine_serving.artifacts.s3 import download

        download(uri, s3 or S3Options(), sink.write, timeout)
    elif scheme in ("gs", "azure", "abfs"):
        raise ArtifactError(
            f"{scheme}:// is not supported yet; mirror the artifact to https, s3 or a volume",
            reasons.INVALID,
        )
    else:
        raise ArtifactError(
            f"unsupported URI scheme {scheme!r} in {redact_uri(uri)}", reasons.INVALID
        )
    return sink.hexdigest()


def _download(uri: str, sink: _HashingSink, timeout: float) -> None:
    import httpx

    try:
        with httpx.stream("GET", uri, follow_redirects=True, timeout=timeout) as response:
            if response.status_code != 200:
                raise ArtifactError(
                    f"GET {redact_uri(uri)} returned HTTP {response.status_code}",
                    reasons.for_http_status(response.status_code),
                )
            for chunk in response.iter_bytes(_CHUNK):
                sink.write(chunk)
    except httpx.HTTPError as exc:
        # httpx's own messages may quote the URL (or a redirect's): keep only what is safe,
        # and no chained traceback that would print the original.
        detail = redact_text(str(exc)) or type(exc).__name__
        raise ArtifactError(f"GET {redact_uri(uri)} failed: {detail}", _http_reason(exc)) from None


def _http_reason(exc: Exception) -> str:
    """A body cut short is a protocol error; no connection at all is a transport error."""
    import httpx

    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.ReadTimeout):
        return reasons.TRUNCATED
    if isinstance(exc, httpx.TransportError):
        return reasons.UNREACHABLE
    return reasons.FETCH_FAILED


class _HashingSink:
    """A write-only file that hashes what passes through and refuses to grow past a cap."""

    def __init__(self, out: BinaryIO, max_bytes: int) -> None:
        self._out = out
        self._max = max_bytes
        self._size = 0
        self._hash = hashlib.sha256()

    def write(self, chunk: bytes) -> int:
        self._size += len(chunk)
        if self._size > self._max:
            raise ArtifactError(
                f"artifact is larger than the {self._max}-byte limit", reasons.TOO_LARGE
            )
        self._hash.update(chunk)
        return self._out.write(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
