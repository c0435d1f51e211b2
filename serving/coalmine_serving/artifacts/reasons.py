"""Why a fetch failed, as one CamelCase word (the ``reason`` of an ``ArtifactError``).

The fetch prints ``coalmine-serve: error: <Reason>: <message>`` as its last line, and the
operator renders the init container with ``terminationMessagePolicy: FallbackToLogsOnError``,
so the pod's ``initContainerStatuses[].state.terminated.message`` starts with the reason
(``kubectl describe pod`` shows it). No message carries a credential: S3 errors are reported by
their code and HTTP status only, never the server's text, and URIs are redacted.
"""

from __future__ import annotations

ACCESS_DENIED = "ArtifactAccessDenied"
"""Wrong or expired credentials, or the identity may not read the object (HTTP 401/403)."""
NOT_FOUND = "ArtifactNotFound"
"""No such bucket or key (HTTP 404)."""
TRUNCATED = "ArtifactTruncated"
"""The body ended before its declared length."""
CHECKSUM_MISMATCH = "ArtifactChecksumMismatch"
"""The bytes do not hash to the pinned sha256."""
TOO_LARGE = "ArtifactTooLarge"
"""Larger than the size cap (``--max-bytes``, the operator's ``maxArtifactBytes``)."""
UNREACHABLE = "ArtifactUnreachable"
"""No connection to the endpoint: DNS, refused, timeout, TLS handshake or certificate."""
NO_CREDENTIALS = "ArtifactCredentialsMissing"
"""Credentials were asked from the environment (a Secret) and are not there."""
FETCH_FAILED = "ArtifactFetchFailed"
"""Any other answer from the server (5xx, not an S3 API, an unexpected status)."""
INVALID = "ArtifactInvalid"
"""The artifact itself is unusable (bad name, unsafe archive, unsupported scheme)."""

ALL = (
    ACCESS_DENIED,
    NOT_FOUND,
    TRUNCATED,
    CHECKSUM_MISMATCH,
    TOO_LARGE,
    UNREACHABLE,
    NO_CREDENTIALS,
    FETCH_FAILED,
    INVALID,
)


def for_http_status(status: int) -> str:
    """The reason for an HTTP status other than 200."""
    if status in (401, 403):
        return ACCESS_DENIED
    if status in (404, 410):
        return NOT_FOUND
    return FETCH_FAILED
