"""The ClusterIP Service in front of the servers; each router says which pods it selects."""

from __future__ import annotations

from coalmine.manifests.labels import Manifest, Owner, metadata


def service(owner: Owner, name: str, port: int, pod_selector: dict[str, str]) -> Manifest:
    """A ClusterIP Service on the servers' ``http`` port."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(owner, name, {}),
        "spec": {
            "type": "ClusterIP",
            "selector": pod_selector,
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }
