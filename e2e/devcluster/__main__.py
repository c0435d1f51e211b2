"""``python -m e2e.devcluster demo|dev ...`` from the repository root (``make demo`` does)."""

from e2e.devcluster.cli import cli

cli(prog_name="python -m e2e.devcluster")
