"""Which API server, as whom: the one credentials loader of the operator and the plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes import config as _untyped_config

from coalmine.k8s.errors import ConfigError

POD_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
POOL_SIZE = 32
"""Connections kept per API server. The client's default (5 per core) is below what the
operator uses at once (a watch per cached kind and namespace, the tick threads), and a
connection returned to a full pool is closed: the next request pays a new TLS handshake."""
# kubernetes.config has no type hints; calling it through Any keeps mypy quiet only here.
config: Any = _untyped_config


def load(
    kubeconfig: str | None = None, context: str | None = None, *, prefer_in_cluster: bool = False
) -> tuple[client.ApiClient, str]:
    """A client configuration and its namespace, from a kubeconfig or the pod's service account.

    A named kubeconfig or context is always used (``ConfigError`` if it does not work).
    Otherwise both are candidates: the default kubeconfig (``$KUBECONFIG``, else
    ~/.kube/config) and, inside a pod, its service account. A person's tool prefers the
    kubeconfig, as kubectl does (a CI job in a pod may deploy to another cluster); the
    operator sets ``prefer_in_cluster``, because kopf logs in that way and its writes must go
    where its watches do. The namespace is the context's (``default`` when it sets none) or
    the pod's.
    """
    named = kubeconfig is not None or context is not None
    pod = None if named else _in_cluster()
    if pod is not None and prefer_in_cluster:
        return pod
    try:
        return _from_kubeconfig(kubeconfig, context)
    except ConfigError:
        if pod is None:
            raise
        return pod


def _from_kubeconfig(kubeconfig: str | None, context: str | None) -> tuple[client.ApiClient, str]:
    configuration = client.Configuration()
    try:
        config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
        return _client(configuration), _context_namespace(kubeconfig, context)
    except (config.ConfigException, FileNotFoundError) as error:
        raise ConfigError(str(error)) from error


def _in_cluster() -> tuple[client.ApiClient, str] | None:
    """The pod's service account; None when we do not run in a pod."""
    configuration = client.Configuration()
    try:
        # Into our own Configuration: the client's process-wide default stays untouched.
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        return None
    namespace = POD_NAMESPACE.read_text().strip() if POD_NAMESPACE.exists() else "default"
    return _client(configuration), namespace


def _client(configuration: client.Configuration) -> client.ApiClient:
    configuration.connection_pool_maxsize = POOL_SIZE
    # The proxy the environment named (or none), kept: the credentials' refresh hook sets the
    # host before every request, and the client then read every environment variable again
    # to pick a proxy for it (0.5 ms of CPU a request, a third of a status write's).
    configuration.proxy = configuration.proxy
    return client.ApiClient(configuration)


def _context_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace the chosen context sets, like kubectl; ``default`` when it sets none."""
    contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    chosen = next((c for c in contexts if c["name"] == context), active) if context else active
    return str((chosen or {}).get("context", {}).get("namespace") or "default")
