"""Errors that carry their HTTP status, so the service layer can stay free of HTTP types."""

from __future__ import annotations


class ServingError(Exception):
    """An error with an HTTP status and a message that is safe to show the client."""

    status = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadRequestError(ServingError):
    """The request is malformed: bad JSON, shape, datatype, NaN (400)."""

    status = 400


class NotFoundError(ServingError):
    """Unknown model, version or feedback id (404)."""

    status = 404


class PayloadTooLargeError(ServingError):
    """Body or row count over the configured limits (413)."""

    status = 413


class OverloadedError(ServingError):
    """Concurrency limit reached; the client should retry elsewhere (503)."""

    status = 503


class ModelNotReadyError(ServingError):
    """The model is not loaded or not warmed up yet (503)."""

    status = 503


class PredictTimeoutError(ServingError):
    """The request exceeded its deadline (504)."""

    status = 504


class ForgedReceiptError(ServingError):
    """A label's receipt was not signed by this ModelDeployment, or was altered since (403)."""

    status = 403


class UnknownKeyError(ServingError):
    """A receipt signed with a key this pod does not know: retired, or another deployment's."""

    status = 404


class DuplicateLabelError(ServingError):
    """A second label for a prediction that already has one (409)."""

    status = 409


class ExpiredLabelError(ServingError):
    """A label that came later than the feedback horizon allows (410)."""

    status = 410


class ArtifactError(Exception):
    """The artifact cannot be used: checksum mismatch, unsafe format, unsafe archive, or the
    fetch failed. ``reason`` is one CamelCase word (``ArtifactAccessDenied``...) that the
    fetch prints first, so the init container's termination message starts with it."""

    def __init__(self, message: str, reason: str = "ArtifactInvalid") -> None:
        super().__init__(message)
        self.reason = reason
