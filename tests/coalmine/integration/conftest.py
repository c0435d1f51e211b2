"""Fixtures of the operator's integration tier (real API server, Prometheus, processes)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.devcluster.controlplane import ControlPlane
from e2e.devcluster.prometheus import PrometheusServer
from e2e.devcluster.sandbox import Sandbox, install_cluster_objects, install_crds
from e2e.devcluster.tinymodels import ModelArtifacts, make_models
from tests.coalmine.integration.gateway_crds import gateway_api_crds


@pytest.fixture(scope="session")
def operator_cluster(control_plane: ControlPlane) -> ControlPlane:
    with control_plane.api_client() as api:
        install_cluster_objects(api)
    return control_plane


@pytest.fixture(scope="session")
def gateway_api(operator_cluster: ControlPlane) -> ControlPlane:
    """The real Gateway API CRDs (HTTPRoute, Gateway) on the control plane."""
    with operator_cluster.api_client() as api:
        install_crds(api, gateway_api_crds())
    return operator_cluster


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelArtifacts:
    return make_models(tmp_path_factory.mktemp("models"))


@pytest.fixture
def harness(
    operator_cluster: ControlPlane, prometheus: PrometheusServer, tmp_path: Path
) -> Iterator[Sandbox]:
    world = Sandbox(operator_cluster, prometheus, tmp_path, f"it-{uuid.uuid4().hex[:8]}")
    world.setup()
    try:
        yield world
    finally:
        world.teardown()
