"""One namespace of one cluster as ``kubectl coalmine`` sees it, and every failure in words.

The requests go through ``coalmine.k8s`` (the same client and errors as the operator). This
module adds only what a person needs: which verb on which resource failed, what to do about
it, and the process exit code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from coalmine.api import GROUP, PLURAL
from coalmine.k8s import (
    ApiError,
    ConfigError,
    ForbiddenError,
    KindNotServedError,
    KubeError,
    NotFoundError,
    ObjectRef,
    UnauthorizedError,
    UserApi,
)

RESOURCE = f"{PLURAL}.{GROUP}"
FIELD_MANAGER = "kubectl-coalmine"  # the writer of our patches in managedFields
REQUEST_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds: fail fast when the server is gone
RBAC_HINT = (
    "the documented role for people is examples/rbac-user.yaml "
    "(get, list, watch, patch on modeldeployments.coalmine.dev; list on events)"
)
# Exit codes (docs/cli.md): 1 refused or failed, 3 not found, 4 forbidden, 5 no cluster.
FAILED, NOT_FOUND, FORBIDDEN, NO_CLUSTER = 1, 3, 4, 5


class CliError(Exception):
    """A failure to report in one line, with the process exit code."""

    def __init__(self, message: str, exit_code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class Cluster:
    """The ModelDeployments of one namespace, as the commands see them."""

    def __init__(self, api: UserApi, namespace: str) -> None:
        self.namespace = namespace
        self._api = api

    def get(self, name: str) -> dict[str, Any]:
        """The ModelDeployment as the API server returns it."""
        with self._phrased("get", RESOURCE, name):
            return self._api.read(self._ref(name))

    def patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a JSON merge patch (RFC 7386) to the ModelDeployment; return the result."""
        with self._phrased("patch", RESOURCE, name):
            return self._api.merge_patch(self._ref(name), body)

    def events(self, name: str) -> list[dict[str, Any]] | None:
        """The Events about the ModelDeployment; None when the person may not list them (the
        page says so, and the rest of it is still useful)."""
        with self._phrased("list", "events", name):
            try:
                return self._api.list_events(self._ref(name))
            except ForbiddenError:
                return None

    def _ref(self, name: str) -> ObjectRef:
        return ObjectRef("ModelDeployment", self.namespace, name)

    @contextmanager
    def _phrased(self, verb: str, resource: str, name: str) -> Iterator[None]:
        try:
            yield
        except KubeError as error:
            raise phrase(error, verb, resource, name, self.namespace) from error


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Cluster:
    """The cluster and namespace of the kubeconfig (``$KUBECONFIG`` or ~/.kube/config when
    not given), or of the pod's service account when there is none and we run in a pod."""
    from coalmine.k8s.client import connect as connect_api  # loads the client only when used

    try:
        api = connect_api(kubeconfig, context, field_manager=FIELD_MANAGER, timeout=REQUEST_TIMEOUT)
    except ConfigError as error:
        raise CliError(f"no usable kubeconfig: {error}", NO_CLUSTER) from error
    return Cluster(api, namespace or api.namespace)


def phrase(error: KubeError, verb: str, resource: str, name: str, namespace: str) -> CliError:
    """What went wrong and what to do about it, for a person."""
    if isinstance(error, KindNotServedError):
        return CliError(
            f"this cluster does not serve {RESOURCE}: install the coalmine CRD "
            "(helm install charts/coalmine, or kubectl apply -f crds/)",
            NOT_FOUND,
        )
    if isinstance(error, NotFoundError) and resource == RESOURCE:
        return CliError(
            f"ModelDeployment {name!r} not found in namespace {namespace!r} "
            "(try -n NAMESPACE, or `kubectl get mdeploy -A`)",
            NOT_FOUND,
        )
    if isinstance(error, NotFoundError):
        message = f"{resource}: not found: {error.message} (is the coalmine CRD installed?)"
        return CliError(message, NOT_FOUND)
    if isinstance(error, ForbiddenError):
        return _forbidden(verb, resource, namespace, error.message)
    if isinstance(error, UnauthorizedError):
        message = f"unauthorized: your credentials were rejected ({error.message})"
        return CliError(message, NO_CLUSTER)
    if isinstance(error, ApiError):
        message = f"{verb} {resource} {name!r} failed: HTTP {error.status}: {error.message}"
        return CliError(message)
    return CliError(f"cannot reach the Kubernetes API server: {error}", NO_CLUSTER)


def _forbidden(verb: str, resource: str, namespace: str, detail: str) -> CliError:
    """Name the missing permission exactly, so it can be granted without guessing."""
    return CliError(
        f"forbidden: you may not {verb} {resource} in namespace {namespace!r} "
        f"(missing RBAC verb {verb!r} on {resource!r}); {RBAC_HINT}. Server said: {detail}",
        FORBIDDEN,
    )
