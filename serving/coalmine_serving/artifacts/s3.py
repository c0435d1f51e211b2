"""``s3://bucket/key`` downloads from any S3-compatible store, through the MinIO client.

Credentials come from one of two places, chosen by the caller (the operator says which):

* ``env``: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``), which
  the kubelet fills in from the Secret named in ``spec.model.s3.credentialsSecret``;
* ``identity``: the pod's own identity: an IRSA web identity token
  (``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN``), an ECS task role or the EC2 instance
  role, the way the AWS SDKs look for them.

Every failure becomes an ``ArtifactError`` with a reason from ``reasons``. S3 errors are
reported by code and HTTP status only: the server's text and the request are never quoted, so
no key id, signature or token reaches a message.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlsplit

from coalmine_serving.artifacts import reasons
from coalmine_serving.errors import ArtifactError

if TYPE_CHECKING:
    from minio import Minio
    from minio.credentials.providers import Provider

CredentialSource = Literal["env", "identity"]
AWS_ENDPOINT = "https://s3.amazonaws.com"
_CHUNK = 1024 * 1024
_CONNECT_SECONDS = 10.0

# S3 error codes (AWS, MinIO, SeaweedFS agree on these) and what they mean for a fetch.
_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AllAccessDisabled",
        "AccountProblem",
        "InvalidSecurity",
    }
)
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchVersion", "ResourceNotFound"})


@dataclass(frozen=True)
class S3Options:
    """Where the store is and whose credentials to use."""

    endpoint: str = AWS_ENDPOINT
    """``https://host[:port]`` or ``http://host[:port]``; the scheme says whether TLS is used."""
    region: str | None = None
    credentials: CredentialSource = "identity"


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_uri(uri: str) -> S3Object:
    """``s3://bucket/path/to/key`` -> bucket and key (the key may contain ``/``)."""
    parts = urlsplit(uri)
    key = unquote(parts.path.lstrip("/"))
    if parts.scheme != "s3" or not parts.netloc or not key or parts.query or "@" in parts.netloc:
        raise ArtifactError(
            "an s3:// uri is s3://bucket/key, without credentials or a query", reasons.INVALID
        )
    return S3Object(bucket=parts.netloc, key=key)


def endpoint_parts(endpoint: str) -> tuple[str, bool]:
    """``https://host:port`` -> (``host:port``, secure). Refuses a path, query or userinfo:
    credentials belong in a Secret, and the bucket and key in the uri."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ArtifactError(f"S3 endpoint must be http(s)://host[:port], not {parts.scheme}://")
    if "@" in parts.netloc or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ArtifactError("S3 endpoint must be http(s)://host[:port] (no user, path or query)")
    return parts.netloc, parts.scheme == "https"


def env_credentials(environ: dict[str, str] | os._Environ[str]) -> tuple[str, str, str | None]:
    """The Secret's keys as the kubelet put them in the environment; a clear error (naming the
    variables, never their values) when one is missing or empty."""
    access, secret = environ.get("AWS_ACCESS_KEY_ID", ""), environ.get("AWS_SECRET_ACCESS_KEY", "")
    missing = [
        name
        for name, value in (("AWS_ACCESS_KEY_ID", access), ("AWS_SECRET_ACCESS_KEY", secret))
        if not value
    ]
    if missing:
        raise ArtifactError(
            f"S3 credentials from a Secret were asked for, but {' and '.join(missing)} "
            "is empty: does the Secret have these keys?",
            reasons.NO_CREDENTIALS,
        )
    return access, secret, environ.get("AWS_SESSION_TOKEN") or None


def download(uri: str, options: S3Options, write: Callable[[bytes], object], timeout: float) -> int:
    """Stream ``uri``'s bytes into ``write``; return how many were written. ``write`` enforces
    the size cap and hashes (``fetch._HashingSink``)."""
    target = parse_uri(uri)
    client = _client(options, timeout)
    try:
        response = client.get_object(target.bucket, target.key)
    except Exception as exc:
        raise classify(exc, target, options) from None
    try:
        return _stream(response, target, write)
    except ArtifactError:
        raise
    except Exception as exc:
        raise classify(exc, target, options) from None
    finally:
        response.close()
        response.release_conn()


def _stream(response: object, target: S3Object, write: Callable[[bytes], object]) -> int:
    declared = response.headers.get("Content-Length")  # type: ignore[attr-defined]
    written = 0
    for chunk in response.stream(_CHUNK):  # type: ignore[attr-defined]
        write(chunk)
        written += len(chunk)
    if declared is not None and written != int(declared):
        raise ArtifactError(
            f"{target}: the body ended after {written} of {declared} bytes", reasons.TRUNCATED
        )
    return written


def _client(options: S3Options, timeout: float) -> Minio:
    import certifi
    import urllib3
    from minio import Minio

    netloc, secure = endpoint_parts(options.endpoint)
    # urllib3 logs each retry with the request's path; the one error line says enough.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=_CONNECT_SECONDS, read=timeout),
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        # Few retries: an init container that fails is restarted by the kubelet anyway, and a
        # refused connection must surface in seconds, not after minutes of backoff.
        retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )
    return Minio(
        netloc,
        secure=secure,
        region=options.region,
        http_client=http,
        credentials=_provider(options.credentials),
    )


def _provider(source: CredentialSource) -> Provider:
    from minio.credentials.providers import IamAwsProvider, StaticProvider

    if source == "env":
        return StaticProvider(*env_credentials(os.environ))
    return IamAwsProvider()


def classify(exc: BaseException, target: S3Object, options: S3Options) -> ArtifactError:
    """The ``ArtifactError`` for an exception of the MinIO client or urllib3. It reads only
    the exception's type, S3 code and status, never its text (which may quote the request)."""
    from minio.error import InvalidResponseError, S3Error, ServerError
    from urllib3.exceptions import MaxRetryError

    if isinstance(exc, S3Error):
        status = exc.response.status if exc.response is not None else 0
        return ArtifactError(f"{target}: {exc.code} (HTTP {status})", _s3_reason(exc.code, status))
    where = urlsplit(options.endpoint).netloc or options.endpoint
    if isinstance(exc, ServerError | InvalidResponseError):
        answered = getattr(exc, "status_code", None) or getattr(exc, "_code", "?")
        return ArtifactError(
            f"{target}: {where} answered HTTP {answered}, not an S3 answer", reasons.FETCH_FAILED
        )
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        return _transport(exc.reason, target, where)
    return _transport(exc, target, where)


def _s3_reason(code: str | None, status: int) -> str:
    if code in _DENIED_CODES or status in (401, 403):
        return reasons.ACCESS_DENIED
    if code in _MISSING_CODES or status == 404:
        return reasons.NOT_FOUND
    return reasons.FETCH_FAILED


def _transport(exc: BaseException, target: S3Object, where: str) -> ArtifactError:
    from urllib3.exceptions import (
        ConnectTimeoutError,
        NewConnectionError,
        ProtocolError,
        ReadTimeoutError,
        SSLError,
    )

    # NewConnectionError (and NameResolutionError) is a ConnectTimeoutError in urllib3 2.
    no_connection = (ConnectTimeoutError, NewConnectionError, SSLError, OSError)
    if isinstance(exc, ProtocolError | ReadTimeoutError):
        return ArtifactError(
            f"{target}: the connection broke before the body was complete ({type(exc).__name__})",
            reasons.TRUNCATED,
        )
    if isinstance(exc, no_connection):
        return ArtifactError(
            f"{target}: cannot reach the S3 endpoint {where} ({_cause(exc)})", reasons.UNREACHABLE
        )
    if isinstance(exc, ValueError):  # a credentials provider with nothing to give
        return ArtifactError(
            f"{target}: no credentials: no Secret named and no pod identity found",
            reasons.NO_CREDENTIALS,
        )
    return ArtifactError(f"{target}: {type(exc).__name__}", reasons.FETCH_FAILED)


def _cause(exc: BaseException) -> str:
    """``NewConnectionError: Connection refused``, ``NameResolutionError``...: the kind and
    the system's words, not urllib3's text (which names the request's URL)."""
    inner = exc.__context__ or exc.__cause__
    kinds = [type(exc).__name__]
    if isinstance(inner, OSError) and inner.strerror:
        kinds.append(inner.strerror)
    return ": ".join(kinds)
