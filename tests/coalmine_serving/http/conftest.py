"""A real ``coalmine-serve`` process per test, for the tests on real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.coalmine_serving import models


@pytest.fixture
def server(artifacts, tmp_path: Path, request) -> Iterator[models.ServerProcess]:  # type: ignore[no-untyped-def]
    """The ONNX classifier served on a free port; extra flags by indirect parametrization."""
    extra = getattr(request, "param", ())
    proc = models.ServerProcess(artifacts["onnx_clf"], tmp_path / "server.log", *extra)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()
