"""``spec.model``: which artifact to serve, and how to trust it."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

from coalmine.api.base import ApiModel
from coalmine.api.rules import Rule, RuleChecked

# One list of formats for the CRD and the server; re-exported for coalmine.api.
from coalmine_serving.contract import ModelFormat as ModelFormat

ALLOWED_SCHEMES = ("file://", "http://", "https://", "s3://", "pvc://")
# Remote bytes can change under the same URI; only a pinned digest makes a revision mean
# the same model every time it is pulled.
REMOTE_SCHEMES = ("http://", "https://", "s3://")

# A label value: the version is stamped on pods and metrics as a label.
LABEL_VALUE_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
MODEL_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$"
SHA256_PATTERN = r"^[a-f0-9]{64}$"
# Scheme, host and optional port only: no userinfo (credentials come from a Secret), no path
# or query (the bucket and key are in the uri).
S3_ENDPOINT_PATTERN = r"^https?://[A-Za-z0-9]([-A-Za-z0-9.]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?/?$"
S3_REGION_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$"
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
# s3://bucket/key: a bucket name as S3 allows it (3-63 lower-case letters, digits, dots,
# hyphens), then a non-empty key.
S3_URI_PATTERN = r"^s3://[a-z0-9][-a-z0-9.]{1,61}[a-z0-9]/.+$"


def _scheme_allowed(uri: str) -> bool:
    return uri.startswith(ALLOWED_SCHEMES) and "://" in uri and len(uri.split("://", 1)[1]) > 0


class S3Source(ApiModel):
    """Where and how to read an ``s3://`` artifact (any S3-compatible store)."""

    endpoint: Annotated[str | None, Field(pattern=S3_ENDPOINT_PATTERN, max_length=263)] = None
    """The S3 API's base URL, ``https://host[:port]`` (or ``http://`` for a store without TLS;
    the sha256 still guards the bytes). Default: AWS S3. TLS is verified against the image's
    CA bundle."""

    region: Annotated[str | None, Field(pattern=S3_REGION_PATTERN, max_length=32)] = None
    """The bucket's region (for example ``eu-west-1``). Left out, the client asks the store
    (one more request, which needs ``s3:GetBucketLocation``)."""

    credentials_secret: Annotated[
        str | None, Field(pattern=SECRET_NAME_PATTERN, max_length=253)
    ] = None
    """A Secret in the ModelDeployment's namespace with keys ``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY`` (and optionally ``AWS_SESSION_TOKEN``). Only the init container
    sees it, as environment variables the kubelet fills in; the operator never reads it.
    Left out, the pod's own identity is used (IRSA web identity token, EC2/ECS role)."""


class ModelSource(ApiModel, RuleChecked):
    """The model artifact of one revision."""

    name: Annotated[str, Field(pattern=MODEL_NAME_PATTERN, max_length=63)]
    """Model name in the inference protocol (``/v2/models/{name}/infer``). Immutable."""

    version: Annotated[str, Field(pattern=LABEL_VALUE_PATTERN, max_length=63)]
    """A human label for this version (for example ``v2`` or a git sha); stamped on metrics."""

    uri: Annotated[str, Field(min_length=8, max_length=2048)]
    """Where the artifact lives: ``file://``, ``http(s)://``, ``s3://bucket/key`` (see ``s3``)
    or ``pvc://claim/path``."""

    format: ModelFormat
    """Serialisation format: ``onnx``, ``skops`` or ``joblib`` (joblib only when the operator's
    ``allowPickle`` is true; otherwise the operator refuses the spec)."""

    sha256: Annotated[str | None, Field(pattern=SHA256_PATTERN)] = None
    """Lower-case hex sha256 of the artifact, verified before loading. Required for remote URIs."""

    trusted_types: Annotated[list[str], Field(max_length=64)] = []
    """skops only: narrows the operator's ``skopsTrustedTypes`` to these types (each must be
    in it; the operator refuses others). Trust never comes from the artifact itself."""

    s3: S3Source | None = None
    """``s3://`` only: the endpoint, region and credentials Secret (all optional: AWS S3 and
    the pod's own identity by default)."""

    __rules__ = (
        Rule(
            cel="self.uri.matches('^(file|https?|s3|pvc)://.+')",
            message="spec.model.uri: scheme must be one of file://, http://, https://, s3://, pvc://",
            holds=lambda m: _scheme_allowed(m.uri),
            field_path=".uri",
        ),
        Rule(
            cel="!self.uri.matches('^(https?|s3)://') || has(self.sha256)",
            message="spec.model.sha256: required when spec.model.uri is remote (http, https, s3)",
            holds=lambda m: not m.uri.startswith(REMOTE_SCHEMES) or m.sha256 is not None,
            field_path=".sha256",
        ),
        Rule(
            cel=f"!self.uri.startsWith('s3://') || self.uri.matches('{S3_URI_PATTERN}')",
            message="spec.model.uri: an s3:// uri names a bucket and a key: s3://bucket/path/model",
            holds=lambda m: not m.uri.startswith("s3://") or bool(re.match(S3_URI_PATTERN, m.uri)),
            field_path=".uri",
        ),
        Rule(
            cel="!has(self.s3) || self.uri.startsWith('s3://')",
            message="spec.model.s3: only for an s3:// uri",
            holds=lambda m: m.s3 is None or m.uri.startswith("s3://"),
            field_path=".s3",
        ),
        Rule(
            cel="self.format == 'skops' || !has(self.trustedTypes) || size(self.trustedTypes) == 0",
            message="spec.model.trustedTypes: only allowed with format skops",
            holds=lambda m: m.format == ModelFormat.SKOPS or not m.trusted_types,
            field_path=".trustedTypes",
        ),
    )
