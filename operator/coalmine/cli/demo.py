"""`coalmine demo`: the canary story on a local cluster (see coalmine.demo)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.option(
    "--cluster",
    type=click.Choice(["auto", "node", "standin"]),
    default="auto",
    show_default=True,
    help="node: real pods on a single-node cluster built here (root, e2e/cluster/node-deps.sh). "
    "standin: the integration tier's kubelet stand-in. auto: node when this machine can run "
    "it, else the stand-in; the demo says which and why.",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep logs and state here instead of a temporary directory removed at the end.",
)
def demo(cluster: str, workdir: Path | None) -> None:
    """v1 serving, a good v2 that promotes, a bad v3 that rolls back, live, then a summary.

    Real API server, etcd, controller-manager, Prometheus, model servers and operator; on the
    real node also real pods, images, Services and a helm-installed operator. Exits non-zero
    if the story did not happen.
    """
    # Imported here: the operator image runs `coalmine operator` without the dev cluster.
    from coalmine.demo import run

    sys.exit(run(workdir, cluster))
