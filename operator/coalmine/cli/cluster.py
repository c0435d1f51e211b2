"""What ``kubectl coalmine`` needs from the cluster, as a small protocol, and its errors.

The commands talk only to this protocol: ``kube.py`` implements it with the Kubernetes
client, and unit tests use an in-memory fake. Errors carry the exit code and a message that
tells a person what to do.
"""

from __future__ import annotations

from typing import Any, Protocol

RBAC_HINT = (
    "the documented role for people is examples/rbac-user.yaml "
    "(get, list, watch, patch on modeldeployments.coalmine.dev; list on events)"
)


class CliError(Exception):
    """A failure to report in one line, with the process exit code."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(CliError):
    exit_code = 3


class ForbiddenError(CliError):
    exit_code = 4

    @classmethod
    def for_request(cls, verb: str, resource: str, namespace: str, detail: str) -> ForbiddenError:
        """Name the missing permission exactly, so it can be granted without guessing."""
        return cls(
            f"forbidden: you may not {verb} {resource} in namespace {namespace!r} "
            f"(missing RBAC verb {verb!r} on {resource!r}); {RBAC_HINT}. Server said: {detail}"
        )


class UnreachableError(CliError):
    """No usable kubeconfig, or the API server did not answer."""

    exit_code = 5


class Cluster(Protocol):
    """One namespace of one cluster, as the commands see it."""

    namespace: str

    def get(self, name: str) -> dict[str, Any]:
        """The ModelDeployment as the API server returns it."""
        ...

    def patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a JSON merge patch (RFC 7386) to the ModelDeployment; return the result."""
        ...

    def events(self, name: str) -> list[dict[str, Any]]:
        """The Events whose involvedObject is this ModelDeployment."""
        ...
