"""Fixtures of the e2e suite: the cluster under test (see support/clusters.py), a client, a
fresh namespace per test, real traffic, and the project's images in the cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from coalmine.devcluster.images import SERVING

# Attach the tail of every component's log to a failing test's report.
from coalmine.devcluster.pytest_plugin import pytest_runtest_makereport  # noqa: F401
from e2e.support.clusters import ClusterUnderTest, start_cluster
from e2e.support.kube import Kube
from e2e.support.traffic import Traffic


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
