"""Shared pytest setup: the real-component fixtures (`prometheus`, `control_plane`)."""

pytest_plugins = ["e2e.devcluster.pytest_plugin"]
