"""The Kubernetes client behind ``kubectl coalmine``: kubeconfig, requests, error translation.

Kept thin on purpose: every decision lives in the pure modules; this file only moves bytes
and turns API errors into messages that name the missing verb and resource.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client
from kubernetes import config as _untyped_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException

from coalmine.api import GROUP, PLURAL, VERSION
from coalmine.cli.cluster import CliError, ForbiddenError, NotFoundError, UnreachableError

RESOURCE = f"{PLURAL}.{GROUP}"
MERGE_PATCH = "application/merge-patch+json"
REQUEST_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds: fail fast when the server is gone
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

T = TypeVar("T")
# kubernetes.config has no type hints; calling it through Any keeps mypy quiet only here.
config: Any = _untyped_config


class KubeCluster:
    """``Cluster`` over the Kubernetes API with the user's own credentials."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self._objects = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)

    def get(self, name: str) -> dict[str, Any]:
        return self._call_for_dict(
            "get",
            RESOURCE,
            name,
            lambda: self._objects.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT
            ),
        )

    def patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call_for_dict(
            "patch",
            RESOURCE,
            name,
            lambda: self._objects.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
                body,
                _content_type=MERGE_PATCH,
                _request_timeout=REQUEST_TIMEOUT,
            ),
        )

    def events(self, name: str) -> list[dict[str, Any]]:
        selector = f"involvedObject.kind=ModelDeployment,involvedObject.name={name}"
        # Raw JSON instead of the client's models: the views read plain dicts, and the
        # generated Event model changed shape between client majors.
        response = self._call(
            "list",
            "events",
            name,
            lambda: self._core.list_namespaced_event(
                self.namespace,
                field_selector=selector,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            ),
        )
        # With _preload_content=False the client hands back the raw urllib3 response.
        items: list[dict[str, Any]] = json.loads(response.data).get("items", [])  # type: ignore[attr-defined]
        return items

    def _call_for_dict(
        self, verb: str, resource: str, name: str, request: Callable[[], object]
    ) -> dict[str, Any]:
        # The custom-objects API is typed as returning `object`; it is the decoded JSON.
        result = self._call(verb, resource, name, request)
        assert isinstance(result, dict), f"unexpected {type(result).__name__} from the API"
        return result

    def _call(self, verb: str, resource: str, name: str, request: Callable[[], T]) -> T:
        try:
            return request()
        except ApiException as error:
            raise _translate(error, verb, resource, name, self.namespace) from error
        except urllib3.exceptions.HTTPError as error:
            raise UnreachableError(f"cannot reach the Kubernetes API server: {error}") from error


def _translate(error: ApiException, verb: str, resource: str, name: str, ns: str) -> CliError:
    detail = _server_message(error)
    if error.status == 404 and "could not find the requested resource" in detail:
        return NotFoundError(
            f"this cluster does not serve {RESOURCE}: install the coalmine CRD "
            "(helm install charts/coalmine, or kubectl apply -f crds/)"
        )
    if error.status == 404 and resource == RESOURCE:
        return NotFoundError(
            f"ModelDeployment {name!r} not found in namespace {ns!r} "
            "(try -n NAMESPACE, or `kubectl get mdeploy -A`)"
        )
    if error.status == 404:
        return NotFoundError(f"{resource}: not found: {detail} (is the coalmine CRD installed?)")
    if error.status == 403:
        return ForbiddenError.for_request(verb, resource, ns, detail)
    if error.status == 401:
        return UnreachableError(f"unauthorized: your credentials were rejected ({detail})")
    return CliError(f"{verb} {resource} {name!r} failed: HTTP {error.status}: {detail}")


def _server_message(error: ApiException) -> str:
    """The Status message from the body, falling back to the HTTP reason."""
    try:
        return str(json.loads(error.body or "")["message"])
    except (ValueError, KeyError, TypeError):
        return str(error.reason or error.status)


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> KubeCluster:
    """A cluster client from the kubeconfig (``$KUBECONFIG`` or ~/.kube/config when not given),
    or the in-cluster service account when there is no kubeconfig and we run in a pod."""
    try:
        api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
        return KubeCluster(api_client, namespace or _context_namespace(kubeconfig, context))
    except (ConfigException, FileNotFoundError) as error:
        if kubeconfig is None and context is None and IN_CLUSTER_NAMESPACE.exists():
            config.load_incluster_config()
            ns = namespace or IN_CLUSTER_NAMESPACE.read_text().strip()
            return KubeCluster(client.ApiClient(), ns)
        raise UnreachableError(f"no usable kubeconfig: {error}") from error


def _context_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace the chosen context sets, like kubectl; ``default`` when it sets none."""
    contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    chosen = next((c for c in contexts if c["name"] == context), active) if context else active
    return str((chosen or {}).get("context", {}).get("namespace") or "default")
