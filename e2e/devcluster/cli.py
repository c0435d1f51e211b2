"""``python -m e2e.devcluster``: the demo and a local dev cluster, run from a source checkout.

``demo`` tells the canary story (e2e.devcluster.demo); ``dev up|env|down`` starts a control
plane and Prometheus (and, with ``--node``, a node) that outlive the command, for developing
the operator against. Not part of the product's ``coalmine`` command: they need the checkout
(its chart, CRD, Dockerfiles and build scripts) and the dev extra.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from e2e.devcluster import devnode, devstate
from e2e.devcluster.demo.story import run

COMMAND = "python -m e2e.devcluster"  # how the messages below tell the user to run us

_state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=devstate.DEFAULT_STATE_DIR,
    show_default=True,
    help="Where the cluster's PKI, data, logs and state.json live.",
)


@click.group()
def cli() -> None:
    """coalmine's demo and dev cluster (run from the repository root)."""


@cli.command()
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
    """v1 serving, a good v2 that promotes, then a v3 that answers HTTP 200 but predicts
    wrongly, rolled back by its accuracy gate on delayed labels; live, then a summary.

    Real API server, etcd, controller-manager, Prometheus, model servers and operator; on the
    real node also real pods, images, Services and a helm-installed operator. Exits non-zero
    if the story did not happen.
    """
    sys.exit(run(workdir, cluster))


@cli.group()
def dev() -> None:
    """Run etcd, kube-apiserver, kube-controller-manager and Prometheus on loopback."""


@dev.command()
@_state_dir_option
@click.option(
    "--node",
    is_flag=True,
    help="Also run a node (containerd, kubelet, kube-proxy, scheduler) so pods really run. "
    "Needs root and e2e/cluster/node-deps.sh; see docs/e2e.md.",
)
def up(state_dir: Path, node: bool) -> None:
    """Start the dev cluster in the background (builds the binaries first if needed)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        state = devnode.up(state_dir) if node else devstate.up(state_dir)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"dev cluster up in {state.startup_seconds} s; logs in {state.logs}")
    click.echo(f"  API server:  {state.server}")
    click.echo(f"  Prometheus:  {state.prometheus_url}")
    click.echo(f'Use it:  eval "$({COMMAND} dev env --state-dir {state_dir})"; kubectl get ns')
    click.echo(f"Stop it: {COMMAND} dev down --state-dir {state_dir}")


@dev.command()
@_state_dir_option
def down(state_dir: Path) -> None:
    """Stop every process `dev up` started."""
    stopped = devnode.down(state_dir)  # also cleans up after a node, if one was started
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "no dev cluster was running")


@dev.command()
@_state_dir_option
def env(state_dir: Path) -> None:
    """Print shell `export` lines for the running dev cluster (use with eval)."""
    state = devstate.load(state_dir)
    if state is None or not state.alive():
        raise click.ClickException(f"no dev cluster is running: start one with `{COMMAND} dev up`")
    click.echo(f"export KUBECONFIG={state.kubeconfig}")
    click.echo(f"export COALMINE_PROMETHEUS_URL={state.prometheus_url}")
