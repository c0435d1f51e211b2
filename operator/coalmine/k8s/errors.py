"""The one set of errors for every request to the API server, whoever makes it.

The operator and ``kubectl coalmine`` see the same types; each phrases them for its audience
(the operator logs and retries; ``coalmine.cli.cluster`` tells a person what to do). Nothing
here imports the client, so the pure code can catch these without loading it.
"""

from __future__ import annotations

# A 404 for a kind that is not served says so in two ways: a Status with this message when
# the group/version is served but not the resource, and plain text ("404 page not found", no
# Status at all) when no handler serves the group, as for a CRD that is not installed. A
# missing object of a served kind is a Status naming it ('... "iris" not found').
NOT_SERVED_MESSAGE = "the server could not find the requested resource"


class KubeError(Exception):
    """Any failure to talk to the API server."""


class ConfigError(KubeError):
    """No usable credentials: no (or a broken) kubeconfig, an unknown context, not in a pod."""


class UnreachableError(KubeError):
    """The API server did not answer (refused, reset, timed out)."""


class ApiError(KubeError):
    """The API server answered with an error; ``status`` is its HTTP status (0 if unknown)
    and ``message`` the message of its Status body (the HTTP reason when it sent none)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class NotFoundError(ApiError):
    """404: the object does not exist."""


class KindNotServedError(NotFoundError):
    """404 because the server does not serve the kind at all (its CRD is not installed)."""


class UnauthorizedError(ApiError):
    """401: the credentials were rejected."""


class ForbiddenError(ApiError):
    """403: RBAC does not allow this verb on this resource."""


class ConflictError(ApiError):
    """409: a stale resourceVersion, or a server-side apply conflict with another manager."""


def error_for(status: int, message: str, *, from_status: bool = True) -> ApiError:
    """The error type for an HTTP status and the server's message; ``from_status`` is False
    when the body was not a Status (JSON) but plain text."""
    if status == 404 and (not from_status or NOT_SERVED_MESSAGE in message):
        return KindNotServedError(status, message)
    by_status: dict[int, type[ApiError]] = {
        401: UnauthorizedError,
        403: ForbiddenError,
        404: NotFoundError,
        409: ConflictError,
    }
    return by_status.get(status, ApiError)(status, message)
