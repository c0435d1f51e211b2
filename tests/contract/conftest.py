"""Reuse the serving tests' artifact fixture (tiny models built in-test)."""

from tests.coalmine_serving.conftest import artifacts

__all__ = ["artifacts"]
