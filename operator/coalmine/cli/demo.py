"""`coalmine demo`: the canary story on the local control plane (see coalmine.demo)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep logs and state here instead of a temporary directory removed at the end.",
)
def demo(workdir: Path | None) -> None:
    """v1 serving, a good v2 that promotes, a bad v3 that rolls back, live, then a summary.

    Real API server, etcd, controller-manager, Prometheus, model servers and operator; a
    kubelet stand-in instead of a node (the same as the integration tests). Exits non-zero
    if the story did not happen.
    """
    # Imported here: the operator image runs `coalmine operator` without the dev cluster.
    from coalmine.demo import run

    sys.exit(run(workdir))
