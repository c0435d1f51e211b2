"""Kubernetes steps for the e2e suite, on the official client (works with any kubeconfig).

Objects are read as plain dicts through the dynamic client: the same shapes as the YAML the
tests write, and no Optional attribute chains of the typed models.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import config, dynamic
from kubernetes.client.exceptions import ApiException

T = TypeVar("T")
FIELD_MANAGER = "coalmine-e2e"


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str
    ip: str


def eventually(
    probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.5
) -> T:
    """Poll until `probe` returns non-None; the TimeoutError says what was awaited and the last
    error seen. Only pacing, never a fixed sleep in place of an observation."""
    deadline, last_error = time.monotonic() + timeout, None
    while True:
        try:
            result = probe()
            if result is not None:
                return result
        except ApiException as exc:
            last_error = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what} ({last_error})")
        time.sleep(interval)


class Kube:
    def __init__(self, kubeconfig: Path) -> None:
        self.api_client = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        self.dynamic = dynamic.DynamicClient(self.api_client)  # type: ignore[no-untyped-call]

    def _resource(self, api_version: str, kind: str) -> Any:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def apply(self, manifest: dict[str, Any]) -> None:
        """Server-side apply, the way `kubectl apply --server-side` does it."""
        meta = manifest["metadata"]
        self._resource(manifest["apiVersion"], manifest["kind"]).server_side_apply(
            body=manifest, name=meta["name"], namespace=meta.get("namespace"),
            field_manager=FIELD_MANAGER, force_conflicts=True,
        )  # fmt: skip

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any]:
        found: dict[str, Any] = (
            self._resource(api_version, kind).get(name=name, namespace=namespace).to_dict()
        )
        return found

    def list_objects(
        self, api_version: str, kind: str, namespace: str | None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Objects of ``kind`` in ``namespace`` (None: cluster-scoped, or all namespaces)."""
        found = self._resource(api_version, kind).get(namespace=namespace, label_selector=selector)
        items: list[dict[str, Any]] = found.to_dict()["items"]
        return items

    def create_namespace(self, prefix: str, labels: dict[str, str] | None = None) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        meta = {"name": name, "labels": labels or {}}
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
        self._resource("v1", "Namespace").create(body=body)
        return name

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        grace_period_seconds: int | None = None,
    ) -> None:
        """``grace_period_seconds=0``: a force delete, the object gone at once."""
        body = {} if grace_period_seconds is None else {"gracePeriodSeconds": grace_period_seconds}
        self._resource(api_version, kind).delete(name=name, namespace=namespace, body=body)

    def delete_namespace(self, name: str) -> None:
        self._resource("v1", "Namespace").delete(name=name)

    def ready_pods(self, namespace: str, selector: str) -> list[PodRef]:
        pods = self.list_objects("v1", "Pod", namespace, selector)
        return [
            PodRef(namespace, pod["metadata"]["name"], pod["status"].get("podIP", ""))
            for pod in pods
            if _is_ready(pod) and not pod["metadata"].get("deletionTimestamp")
        ]

    def wait_deployment_ready(self, namespace: str, name: str, timeout: float = 300) -> None:
        def rolled_out() -> bool | None:
            dep = self.get("apps/v1", "Deployment", name, namespace)
            status, want = dep.get("status", {}), dep["spec"]["replicas"]
            done = (
                status.get("observedGeneration") == dep["metadata"]["generation"]
                and status.get("updatedReplicas") == want
                and status.get("readyReplicas") == want
                and status.get("replicas") == want
            )
            return True if done else None

        eventually(rolled_out, timeout=timeout, what=f"deployment {namespace}/{name} Ready")

    def service_cluster_ip(self, namespace: str, name: str) -> str:
        ip: str = self.get("v1", "Service", name, namespace)["spec"]["clusterIP"]
        return ip

    def service_url(self, namespace: str, name: str) -> str:
        """http://<ClusterIP>:<first port>: routable from this machine on the local cluster."""
        spec = self.get("v1", "Service", name, namespace)["spec"]
        return f"http://{spec['clusterIP']}:{spec['ports'][0]['port']}"

    def events(self, namespace: str) -> list[str]:
        return [
            f"{e['involvedObject']['kind']}/{e['involvedObject']['name']}: "
            f"{e.get('reason')}: {e.get('message')}"
            for e in self.list_objects("v1", "Event", namespace)
        ]


def _is_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
