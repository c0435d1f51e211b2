"""Fixtures of the e2e suite: the cluster under test (see support/clusters.py), a client, a
fresh namespace per test, real traffic, the project's images in the cluster, and the product
installed by helm (shared by every operator scenario)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.devcluster.images import OPERATOR, SERVING
from e2e.devcluster.product import InstalledProduct

# Attach the tail of every component's log to a failing test's report.
from e2e.devcluster.pytest_plugin import pytest_runtest_makereport  # noqa: F401
from e2e.support.clusters import ClusterUnderTest, external_kubeconfig, start_cluster
from e2e.support.kube import Kube
from e2e.support.rollout import RESTRICTED, World
from e2e.support.traffic import Traffic


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that build and remove node clusters of their own run first: one node cluster fits
    a machine, and the suite's shared one, started by the first test that needs it, stays up
    until the session ends. Naming them first on the command line is not enough: pytest
    collects a directory given after them in file-name order, so test_model_gates.py came
    before test_node_teardown.py."""
    items.sort(key=lambda item: "own_node_workdir" not in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterUnderTest]:
    under_test = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield under_test
    finally:
        if under_test.local is not None:
            under_test.local.stop()


@pytest.fixture(scope="session")
def kube(cluster: ClusterUnderTest) -> Kube:
    return Kube(cluster.kubeconfig)


@pytest.fixture(scope="session")
def traffic(kube: Kube, cluster: ClusterUnderTest) -> Iterator[Traffic]:
    client = Traffic(kube, routable=cluster.routable)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def serving_image(cluster: ClusterUnderTest) -> str:
    return cluster.image(SERVING)


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    name = kube.create_namespace("e2e")
    try:
        yield name
    finally:
        kube.delete_namespace(name)


@pytest.fixture
def own_node_workdir() -> Iterator[Path]:
    """For tests that start and stop node clusters of their own on this machine, so never on a
    foreign cluster. Short on purpose: kubelet's unix sockets live under it (108 bytes at most),
    and pytest's tmp_path for a test with a long name is already 60 characters deep."""
    if external_kubeconfig() is not None:
        pytest.skip("starts node clusters of its own on this machine; not for a foreign one")
    path = Path(tempfile.mkdtemp(prefix="e2e-node-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def world(
    cluster: ClusterUnderTest, kube: Kube, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The operator installed the way users install it (rollout scenario 1 begins here)."""
    if not (cluster.routable and cluster.host_address):
        pytest.skip(
            "pods must reach this machine (COALMINE_E2E_HOST_ADDRESS: artifacts, Prometheus) "
            "and it must route to them (COALMINE_E2E_ROUTABLE=1); e2e/kind/run.sh sets both"
        )
    product = InstalledProduct(
        cluster.kubeconfig,
        tmp_path_factory.mktemp("rollouts"),
        cluster.image(OPERATOR),
        cluster.image(SERVING),
        host_address=cluster.host_address,
    )
    product.start()
    try:
        yield World(kube, cluster.kubeconfig, product)
    finally:
        product.stop()


@pytest.fixture
def ns(kube: Kube) -> Iterator[str]:
    """A restricted namespace per operator scenario."""
    name = kube.create_namespace("rollout", labels=RESTRICTED)
    try:
        yield name
    finally:
        kube.delete_namespace(name)
