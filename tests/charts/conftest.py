"""Fixtures of the chart tests."""

from __future__ import annotations

import pytest

from tests.charts.helm import Helm, install_helm


@pytest.fixture(scope="session")
def helm() -> Helm:
    return Helm(install_helm())
