"""``spec.model``: which artifact to serve, and how to trust it."""

from __future__ import annotations

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


def _scheme_allowed(uri: str) -> bool:
    return uri.startswith(ALLOWED_SCHEMES) and "://" in uri and len(uri.split("://", 1)[1]) > 0


class ModelSource(ApiModel, RuleChecked):
    """The model artifact of one revision."""

    name: Annotated[str, Field(pattern=MODEL_NAME_PATTERN, max_length=63)]
    """Model name in the inference protocol (``/v2/models/{name}/infer``). Immutable."""

    version: Annotated[str, Field(pattern=LABEL_VALUE_PATTERN, max_length=63)]
    """A human label for this version (for example ``v2`` or a git sha); stamped on metrics."""

    uri: Annotated[str, Field(min_length=8, max_length=2048)]
    """Where the artifact lives: ``file://``, ``http(s)://`` or ``pvc://claim/path``. ``s3://``
    passes validation, but the model server cannot fetch it yet: its pods never get ready."""

    format: ModelFormat
    """Serialisation format: ``onnx``, ``skops`` or ``joblib`` (joblib only when the operator's
    ``allowPickle`` is true; otherwise the operator refuses the spec)."""

    sha256: Annotated[str | None, Field(pattern=SHA256_PATTERN)] = None
    """Lower-case hex sha256 of the artifact, verified before loading. Required for remote URIs."""

    trusted_types: Annotated[list[str], Field(max_length=64)] = []
    """skops only: narrows the operator's ``skopsTrustedTypes`` to these types (each must be
    in it; the operator refuses others). Trust never comes from the artifact itself."""

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
            cel="self.format == 'skops' || !has(self.trustedTypes) || size(self.trustedTypes) == 0",
            message="spec.model.trustedTypes: only allowed with format skops",
            holds=lambda m: m.format == ModelFormat.SKOPS or not m.trusted_types,
            field_path=".trustedTypes",
        ),
    )
