"""The fault proxy (a real process) in front of the real API server and a real Prometheus:
it forwards faithfully, and each fault looks to a client as the real failure would."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from e2e.devcluster.controlplane import ControlPlane
from e2e.devcluster.faultcontrol import Fault, FaultProxy
from e2e.devcluster.prometheus import PrometheusServer

pytestmark = pytest.mark.integration


@pytest.fixture
def api_proxy(control_plane: ControlPlane, tmp_path: Path) -> Iterator[FaultProxy]:
    with FaultProxy.for_apiserver(control_plane, tmp_path) as proxy:
        yield proxy


def _as_service_account(plane: ControlPlane, proxy: FaultProxy, timeout: float) -> httpx.Client:
    """The `default` ServiceAccount's token (allowed to view `default`), through the proxy."""
    with plane.api_client() as admin:
        admin.post("/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", json={
            "metadata": {"name": "default-views"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}],
        })  # fmt: skip
    config = yaml.safe_load(
        proxy.kubeconfig_through(
            plane.kubeconfig_for_service_account("default", "default")
        ).read_text()
    )
    token = config["users"][0]["user"]["token"]
    ca = ssl.create_default_context(cafile=str(plane.pki.ca.cert))
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=proxy.url, verify=ca, timeout=timeout, headers=headers)


def test_the_api_server_still_judges_the_client_behind_the_proxy(
    control_plane: ControlPlane, api_proxy: FaultProxy
) -> None:
    with _as_service_account(control_plane, api_proxy, 5) as api:
        review = api.post(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        secrets = api.get("/api/v1/namespaces/kube-system/secrets")
    # The proxy adds no identity of its own: the API server sees the token and says no.
    assert review.json()["status"]["userInfo"]["username"] == (
        "system:serviceaccount:default:default"
    )
    assert secrets.status_code == 403
    assert api_proxy.stats()["forwarded"] == 2


def test_each_fault_reaches_the_client_as_the_real_failure(
    control_plane: ControlPlane, api_proxy: FaultProxy
) -> None:
    path = "/api/v1/namespaces/default/configmaps/kube-root-ca.crt"
    with _as_service_account(control_plane, api_proxy, 2) as api:
        api_proxy.inject(Fault("429", path="configmaps", times=1))
        throttled = api.get(path)
        assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
        assert throttled.json()["reason"] == "TooManyRequests"
        assert api.get(path).status_code == 200  # `times=1`: the next one passes
        api_proxy.inject(Fault("500", path="configmaps"))
        assert api.get(path).status_code == 500
        api_proxy.inject(Fault("hang", path="configmaps"))
        with pytest.raises(httpx.ReadTimeout):
            api.get(path)
        api_proxy.inject(Fault("truncate", path="configmaps"))
        with pytest.raises(httpx.RemoteProtocolError):
            api.get(path)
        api_proxy.inject(Fault("slow", path="configmaps", seconds=1.0))
        began = time.monotonic()
        assert api.get(path).status_code == 200 and time.monotonic() - began >= 1.0
        api_proxy.clear()
        assert api.get(path).status_code == 200


def test_a_dropped_watch_is_cut_mid_stream(
    control_plane: ControlPlane, api_proxy: FaultProxy
) -> None:
    api_proxy.inject(Fault("drop", watch=True, seconds=1.0))
    began = time.monotonic()
    watch = {"watch": "true", "timeoutSeconds": "20"}
    with (
        _as_service_account(control_plane, api_proxy, 30) as api,
        pytest.raises(httpx.RemoteProtocolError),
        api.stream("GET", "/api/v1/namespaces/default/configmaps", params=watch) as stream,
    ):
        for _ in stream.iter_bytes():
            pass
    assert 1.0 <= time.monotonic() - began < 10  # cut by the proxy, not ended by the server


def test_prometheus_answers_and_faults_through_the_proxy(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    with FaultProxy.for_prometheus(prometheus.url, tmp_path) as proxy:
        query = f"{proxy.url}/api/v1/query"
        assert httpx.get(query, params={"query": "1"}).json()["status"] == "success"
        proxy.inject(Fault("500", path="/api/v1/query"))
        assert httpx.get(query, params={"query": "1"}).status_code == 500
        proxy.inject(Fault("truncate", path="/api/v1/query"))
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(query, params={"query": "1"})
        assert proxy.hits() == 1
