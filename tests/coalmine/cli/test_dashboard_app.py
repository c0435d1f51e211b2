"""The dashboard's routes over a fake cluster (in-process ASGI): codes, headers, no writes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from coalmine.cli.cluster import FORBIDDEN, NO_CLUSTER, NOT_FOUND, CliError
from coalmine.cli.dashboard.app import Dashboard, Settings, build_app, jsonable
from coalmine.cli.dashboard.command import allowed_hosts, is_loopback
from coalmine.cli.dashboard.series import Matrix
from coalmine.cli.kubectl import cli
from tests.coalmine.cli.samples import NOW, events, progressing, rolled_back

SCRIPT = "<script>alert(1)</script>"


class FakeSource:
    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}
        self.fail: CliError | None = None

    def list_all(self) -> list[dict[str, Any]]:
        if self.fail:
            raise self.fail
        return list(self.objects.values())

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        if self.fail:
            raise self.fail
        if (namespace, name) not in self.objects:
            raise CliError(f"ModelDeployment {name!r} not found", NOT_FOUND)
        return self.objects[(namespace, name)]

    def events(self, namespace: str, name: str) -> list[dict[str, Any]] | None:
        return events()


def old() -> dict[str, Any]:
    obj = rolled_back()
    obj["metadata"].update(name="old", uid="u-old")
    obj["metadata"]["annotations"] = {"kubernetes.io/change-cause": SCRIPT}
    return obj


@pytest.fixture
def source() -> FakeSource:
    return FakeSource([progressing(), old()])


@pytest.fixture
def dashboard(source: FakeSource) -> Dashboard:
    def fetcher(address: str) -> Any:
        def fetch(query: str, start: float, end: float, step: float) -> Matrix:
            return Matrix()

        return fetch

    settings = Settings(prometheus="http://prometheus.test:9090")
    board = Dashboard(source, settings, fetcher, now=lambda: NOW)
    board.poll()
    return board


@pytest.fixture
def client(dashboard: Dashboard) -> Iterator[TestClient]:
    app = build_app(dashboard, allowed_hosts("127.0.0.1"), poll=False)
    with TestClient(app, base_url="http://127.0.0.1:8765") as test_client:
        yield test_client


def test_list_has_every_deployment(client: TestClient) -> None:
    answer = client.get("/api/deployments")
    assert answer.status_code == 200
    items = answer.json()["items"]
    assert [(i["name"], i["phase"]) for i in items] == [
        ("iris", "Progressing"),
        ("old", "Degraded"),
    ]
    assert items[1]["lastDecision"]["check"] == "error-rate"


def test_detail_of_one(client: TestClient) -> None:
    detail = client.get("/api/deployments/ml/old").json()
    assert detail["changeCause"] == SCRIPT  # JSON carries it as a string; the page, as text
    assert detail["decision"]["kind"] == "rollback"
    assert detail["checkSeries"]["prometheus"] == "http://prometheus.test:9090"


def test_unknown_and_malformed_objects_are_4xx(client: TestClient) -> None:
    assert client.get("/api/deployments/ml/nope").status_code == 404
    assert client.get("/api/deployments/ml/nope").json()["error"].startswith("ModelDeployment")
    bad = client.get("/api/deployments/ml/%3Cscript%3E")
    assert bad.status_code == 400 and bad.json() == {"error": "name: not a Kubernetes object name"}
    assert client.get("/api/deployments/ml").status_code == 404
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/secrets.txt").status_code == 404


@pytest.mark.parametrize(("code", "status"), [(FORBIDDEN, 403), (NO_CLUSTER, 502), (1, 502)])
def test_cluster_failures_are_said_not_500(
    client: TestClient, source: FakeSource, code: int, status: int
) -> None:
    source.fail = CliError("forbidden: you may not get modeldeployments", code)
    answer = client.get("/api/deployments/ml/iris")
    assert answer.status_code == status and "forbidden" in answer.json()["error"]


def test_a_failed_list_is_shown_with_the_last_rows_kept(
    client: TestClient, source: FakeSource, dashboard: Dashboard
) -> None:
    source.fail = CliError("cannot reach the Kubernetes API server", NO_CLUSTER)
    dashboard.poll()
    listing = client.get("/api/deployments")
    assert listing.status_code == 200
    assert listing.json()["error"] == "cannot reach the Kubernetes API server"
    assert len(listing.json()["items"]) == 2


def test_a_status_of_a_newer_operator_is_a_502_not_a_500(
    source: FakeSource, client: TestClient
) -> None:
    source.objects[("ml", "iris")]["status"]["phase"] = "Exploded"
    answer = client.get("/api/deployments/ml/iris")
    assert answer.status_code == 502 and "upgrade" in answer.json()["error"]


def test_nothing_can_be_written(client: TestClient) -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in ("/", "/api/deployments", "/api/deployments/ml/iris"):
            assert client.request(method, path).status_code == 405, (method, path)


def test_another_host_name_is_refused(client: TestClient) -> None:
    """A DNS-rebinding page (evil.example resolving to 127.0.0.1) cannot read the JSON."""
    answer = client.get("/api/deployments", headers={"host": "evil.example:8765"})
    assert answer.status_code == 400
    assert client.get("/api/deployments", headers={"host": "localhost:8765"}).status_code == 200


def test_every_answer_carries_the_strict_headers(client: TestClient) -> None:
    for path in ("/", "/static/dashboard.js", "/api/deployments", "/api/deployments/ml/nope"):
        headers = client.get(path).headers
        assert "script-src 'self'" in headers["content-security-policy"], path
        assert "'unsafe-inline'" not in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"


def test_the_page_is_static_and_the_script_never_parses_html(client: TestClient) -> None:
    page = client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert "iris" not in page.text and "<script>" not in page.text.replace(
        '<script src="/static/dashboard.js" defer></script>', ""
    )
    script = client.get("/static/dashboard.js").text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink


def test_json_has_no_nan() -> None:
    assert jsonable({"a": [float("nan"), 1.0, float("inf")]}) == {"a": [None, 1.0, None]}


def test_loopback_only_unless_asked() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    assert allowed_hosts("0.0.0.0") == ["*"]
    result = CliRunner().invoke(cli, ["dashboard", "--address", "0.0.0.0"])
    assert result.exit_code == 2
    assert "refusing to serve on 0.0.0.0" in result.output and "--allow-remote" in result.output
