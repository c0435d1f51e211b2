"""Pytest fixtures for real components: `prometheus`, `control_plane` and `seaweedfs` (S3).

Registered by tests/conftest.py (`pytest_plugins = ["e2e.devcluster.pytest_plugin"]`).
When a test fails, the tail of every running component's log is attached to its report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from e2e.devcluster.binaries import kube_bin_dir
from e2e.devcluster.controlplane import ControlPlane
from e2e.devcluster.process import live_processes
from e2e.devcluster.prometheus import PrometheusServer
from e2e.devcluster.seaweedfs import SeaweedS3

LOG_TAIL_BYTES = 6_000


@pytest.fixture
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A fresh Prometheus per test (it starts in ~0.1 s), scraping nothing until set_targets."""
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"))
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A real S3 server (SeaweedFS) on loopback, shared by the session: tests use their own
    buckets. Only the keys in ``e2e.devcluster.seaweedfs`` are accepted."""
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver + kube-controller-manager, shared by the whole session.

    Session scoped because start-up takes seconds, not milliseconds: tests isolate themselves
    with their own namespaces. `.kubeconfig` is cluster-admin; use
    `.kubeconfig_for_service_account(ns, name)` to act under a ServiceAccount's RBAC.
    """
    plane = ControlPlane(tmp_path_factory.mktemp("control-plane"), kube_bin_dir())
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for proc in live_processes():
            report.sections.append(
                (f"{proc.name} log ({proc.log_path})", proc.log_tail(LOG_TAIL_BYTES))
            )
    return report
