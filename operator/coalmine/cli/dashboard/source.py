"""The cluster as the dashboard reads it, through the plugin's client and its error words."""

from __future__ import annotations

from typing import Any

from coalmine.cli.cluster import RESOURCE, Cluster, phrase
from coalmine.k8s import KubeError
from coalmine.k8s.client import KubernetesApi


class KubeSource:
    """ModelDeployments of one namespace, or of all (``namespace`` None)."""

    def __init__(self, api: KubernetesApi, namespace: str | None) -> None:
        self._api, self.namespace = api, namespace

    def list_all(self) -> list[dict[str, Any]]:
        try:
            return self._api.list_objects("ModelDeployment", self.namespace)
        except KubeError as error:
            where = self.namespace or "(all namespaces)"
            raise phrase(error, "list", RESOURCE, "", where) from error

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        return Cluster(self._api, namespace).get(name)

    def events(self, namespace: str, name: str) -> list[dict[str, Any]] | None:
        return Cluster(self._api, namespace).events(name)
