"""Shared pytest setup: the real-component fixtures (`prometheus`, `control_plane`)."""

pytest_plugins = ["coalmine.devcluster.pytest_plugin"]
