"""Real HTTP requests to Services and pods of the cluster under test.

On our local cluster this machine routes to ClusterIPs (kube-proxy's iptables DNAT) and pod
IPs (the bridge), so requests go there directly: that is what proves the Service spreads load.
On any other cluster they go through the API server's proxy subresources instead.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from kubernetes.client.exceptions import ApiException

from e2e.support.kube import Kube, PodRef


class Traffic:
    def __init__(self, kube: Kube, *, routable: bool) -> None:
        self.kube = kube
        self.routable = routable
        # A new connection per request: kube-proxy balances connections, not requests, so a
        # kept-alive connection would pin every request to one pod.
        self._http = httpx.Client(timeout=10.0, limits=httpx.Limits(max_keepalive_connections=0))

    def close(self) -> None:
        self._http.close()

    def post_service(
        self, namespace: str, service: str, port: int, path: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """POST JSON to a Service; returns (status code, decoded body or {})."""
        if self.routable:
            ip = self.kube.service_cluster_ip(namespace, service)
            response = self._http.post(f"http://{ip}:{port}{path}", json=body)
            return response.status_code, _json(response.content)
        proxy = f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy{path}"
        return self._via_apiserver("POST", proxy, body)

    def service_answers(self, namespace: str, service: str, port: int, path: str) -> bool:
        """True when a GET through the Service gets HTTP 200 (False on refusal or timeout)."""
        if not self.routable:
            proxy = f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy{path}"
            return self._raw("GET", proxy, None)[0] == 200
        ip = self.kube.service_cluster_ip(namespace, service)
        try:
            return self._http.get(f"http://{ip}:{port}{path}").status_code == 200
        except httpx.TransportError:
            return False

    def get_pod(self, pod: PodRef, port: int, path: str) -> str:
        """GET a path on one pod (e.g. its /metrics) and return the body text."""
        if self.routable:
            response = self._http.get(f"http://{pod.ip}:{port}{path}")
            response.raise_for_status()
            return response.text
        proxy = f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}:{port}/proxy{path}"
        status, raw = self._raw("GET", proxy, None)
        if status != 200:
            raise RuntimeError(f"GET {proxy}: HTTP {status}")
        return raw.decode()

    def _via_apiserver(
        self, method: str, path: str, body: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any]]:
        status, raw = self._raw(method, path, body)
        return status, _json(raw)

    def _raw(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, bytes]:
        # Through the dynamic client: it keeps up with the kubernetes package's changing
        # low-level request API (call_api's signature changed in 37).
        try:
            response: Any = self.kube.dynamic.request(method, path, body=body, serialize=False)
        except ApiException as exc:  # non-2xx answers from the pod arrive as exceptions
            answer = exc.body if isinstance(exc.body, bytes) else str(exc.body or "").encode()
            return int(exc.status or 0), answer
        if getattr(response, "data", None) is None:
            response.read()
        return int(response.status), bytes(response.data)


def _json(raw: bytes) -> dict[str, Any]:
    try:
        decoded = json.loads(raw)
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}
