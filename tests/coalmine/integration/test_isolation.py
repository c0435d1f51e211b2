"""One tenant's silent Prometheus delays no one else, and never delays its own abort.

Two ModelDeployments in one namespace, one operator, the real API server: ``tenant-a``
points at a black hole (a real socket that accepts connections and never answers), ``iris``
at the real Prometheus. ``iris`` rolls a bad version back in its normal time while
``tenant-a`` is stuck analysing; then ``tenant-a``'s abort is carried out within seconds,
without one more query to the black hole.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.devcluster.sandbox import (
    MD_PATH,
    Sandbox,
    apply_model_deployment,
    read_model_deployment,
    wait_for,
)
from e2e.devcluster.specs import spec
from e2e.devcluster.tinymodels import ModelArtifacts

pytestmark = pytest.mark.integration

TENANT_A = "tenant-a"
QUERY_TIMEOUT = 2.0  # e2e.devcluster.specs: prometheus.timeout "2s", so a budget of 4 s


class BlackHole:
    """A TCP server that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, name="black-hole", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)  # kept open, never read, never answered
            self.accepted += 1

    def __enter__(self) -> BlackHole:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self._server.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    with BlackHole() as hole:
        yield hole


def _tenant_a_spec(models: ModelArtifacts, version: str, address: str) -> dict[str, Any]:
    body = spec(models.model(version), steps=[{"weight": 20, "pause": "10m"}], prometheus=address)
    body["model"]["name"] = TENANT_A  # its own series: never mixed with iris's
    return body


def _tenant_a(h: Sandbox) -> dict[str, Any]:
    return dict(read_model_deployment(h.api, h.ns, TENANT_A).get("status", {}))


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


def _wait_tenant_a(h: Sandbox, check: Any, timeout: float, what: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        status = _tenant_a(h)
        return status if check(status) else None

    try:
        return wait_for(probe, timeout, what, every=0.1)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\nlast status: {_tenant_a(h)}") from exc


def test_a_silent_prometheus_delays_neither_another_object_nor_its_own_abort(
    harness: Sandbox, models: ModelArtifacts, black_hole: BlackHole
):
    h = harness
    # The black hole is one of the operator's Prometheus endpoints: an object may name only
    # those (any other address is refused before a query is made).
    h.operator_env["COALMINE_PROMETHEUS_ENDPOINTS"] = f"black-hole={black_hole.url}"
    h.kill_operator()
    h.start_operator()
    # One after the other: four model servers starting at once are too much for two cores.
    h.apply(spec(models.model("v1"), prometheus=h.prometheus.url))
    h.wait_status(lambda s: s.get("phase") == "Healthy", 120, "iris v1 to serve")
    apply_model_deployment(h.api, h.ns, TENANT_A, _tenant_a_spec(models, "v1", black_hole.url))
    _wait_tenant_a(h, lambda s: s.get("phase") == "Healthy", 120, "tenant-a v1 to serve")
    h.start_traffic()

    # tenant-a's canary takes traffic and its analysis hangs on the black hole.
    apply_model_deployment(h.api, h.ns, TENANT_A, _tenant_a_spec(models, "v2", black_hole.url))
    stuck = _wait_tenant_a(
        h, lambda s: _condition(s, "AnalysisError").get("status") == "True", 120,
        "tenant-a's queries to fail on the black hole",
    )  # fmt: skip
    assert "query failed" in _condition(stuck, "AnalysisError")["message"]
    assert _condition(stuck, "Analysis")["reason"] == "ProviderError"
    assert black_hole.accepted > 0

    # Meanwhile iris rolls a bad version back, measured by the real Prometheus.
    bad = spec(
        models.model("v2"),
        env={"COALMINE_SERVING_FAULT_ERROR_RATE": "0.2"},
        prometheus=h.prometheus.url,
    )
    started = time.monotonic()
    h.apply(bad)
    done = h.wait_status(lambda s: s.get("phase") == "Degraded", 120, "iris v2 to be rolled back")
    iris_rollback = time.monotonic() - started
    assert done["rollback"]["check"] == "error-rate" and done["rollback"]["stage"] == "Done"
    print(f"iris: bad version rolled back {iris_rollback:.1f}s after it was applied")

    # tenant-a was analysing against the black hole all along, and still is.
    still = _tenant_a(h)
    assert still["phase"] in ("Progressing", "Paused") and still.get("weight", 0) > 0
    assert _condition(still, "AnalysisError").get("status") == "True"

    # Its abort is carried out at once: at most one tick already waiting on the black hole
    # (the budget, twice the query timeout), then a tick that queries nothing.
    accepted_before = black_hole.accepted
    asked = time.monotonic()
    h.api.patch(
        f"{MD_PATH.format(ns=h.ns)}/{TENANT_A}",
        json={"metadata": {"annotations": {"coalmine.dev/abort": "true"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).raise_for_status()
    _wait_tenant_a(
        h, lambda s: s.get("phase") in ("RollingBack", "Degraded") and s.get("weight") == 0,
        30, "tenant-a's abort",
    )  # fmt: skip
    abort_took = time.monotonic() - asked
    print(f"tenant-a: abort carried out {abort_took:.1f}s after it was asked")
    assert abort_took < 2 * QUERY_TIMEOUT + 3.0, abort_took
    aborted = _wait_tenant_a(h, lambda s: s.get("phase") == "Degraded", 60, "tenant-a to settle")
    assert aborted["history"][-1]["outcome"] == "Aborted"
    # At most the queries of the one measurement already in flight when the abort came.
    assert black_hole.accepted - accepted_before <= 4
