"""``coalmine dev``: a local control plane and Prometheus for developing the operator."""

from __future__ import annotations

import os
from pathlib import Path

import click

# The dev cluster's modules are imported inside the commands: they need the `dev` extra
# (cryptography), which the operator image does not install, and `coalmine operator` runs
# through this same CLI. (Same default as devstate.DEFAULT_STATE_DIR.)
_DEFAULT_STATE_DIR = Path(os.environ.get("COALMINE_CACHE", Path.home() / ".cache/coalmine")) / "dev"

_state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=_DEFAULT_STATE_DIR,
    show_default=True,
    help="Where the cluster's PKI, data, logs and state.json live.",
)


@click.group()
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
    from coalmine.devcluster import devnode, devstate

    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        state = devnode.up(state_dir) if node else devstate.up(state_dir)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"dev cluster up in {state.startup_seconds} s; logs in {state.logs}")
    click.echo(f"  API server:  {state.server}")
    click.echo(f"  Prometheus:  {state.prometheus_url}")
    click.echo(f'Use it:  eval "$(coalmine dev env --state-dir {state_dir})"; kubectl get ns')
    click.echo(f"Stop it: coalmine dev down --state-dir {state_dir}")


@dev.command()
@_state_dir_option
def down(state_dir: Path) -> None:
    """Stop every process `coalmine dev up` started."""
    from coalmine.devcluster import devnode

    stopped = devnode.down(state_dir)  # also cleans up after a node, if one was started
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "no dev cluster was running")


@dev.command()
@_state_dir_option
def env(state_dir: Path) -> None:
    """Print shell `export` lines for the running dev cluster (use with eval)."""
    from coalmine.devcluster import devstate

    state = devstate.load(state_dir)
    if state is None or not state.alive():
        raise click.ClickException("no dev cluster is running: start one with `coalmine dev up`")
    click.echo(f"export KUBECONFIG={state.kubeconfig}")
    click.echo(f"export COALMINE_PROMETHEUS_URL={state.prometheus_url}")
