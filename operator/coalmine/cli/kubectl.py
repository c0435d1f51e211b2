"""``kubectl coalmine``: watch a rollout and steer it by hand.

kubectl runs any ``kubectl-<name>`` on PATH as a plugin, so this console script is the
``kubectl coalmine`` command. Every control is a merge patch (an annotation, or
``spec.paused``) that the operator acts on at its next tick: the CLI never talks to the
operator, and GitOps users can write the same fields in their manifests.

Exit codes: 0 done, 1 refused or failed, 2 usage, 3 not found, 4 forbidden, 5 no cluster;
``status --wait`` adds 6 rolled back, 7 failed, 8 timed out (``cli/wait.py``).
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

import click
from pydantic import ValidationError

from coalmine import __version__
from coalmine.api.base import format_duration, parse_duration
from coalmine.cli.cluster import CliError, Cluster, connect
from coalmine.cli.controls import Control, annotation_patch, paused_patch, refusal, rfc3339
from coalmine.cli.render import read_status, render_history, render_status
from coalmine.cli.wait import TIMED_OUT, ending, progress_line

P = ParamSpec("P")
R = TypeVar("R")
CLEAR_SCREEN = "\x1b[H\x1b[2J"


@dataclass
class Deps:
    """What the commands reach outside themselves; tests pass fakes through ``obj=``."""

    connect: Callable[[str | None, str | None, str | None], Cluster] = connect
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep


def _cluster_options(command: Callable[P, R]) -> Callable[P, R]:
    """Options after the subcommand, as kubectl users type them (``status x -n ml``)."""
    for option in (
        click.option("-n", "--namespace", help="Namespace (default: the context's namespace)."),
        click.option("--context", help="The kubeconfig context to use."),
        click.option("--kubeconfig", help="Path to the kubeconfig file (default: $KUBECONFIG)."),
    ):
        command = option(command)
    return command


def _reports_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Print a CliError in one line and exit with its code, instead of a traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except CliError as error:
            click.echo(f"error: {error.message}", err=True)
            sys.exit(error.exit_code)
        except ValidationError as error:
            click.echo(
                "error: the object's status does not match this kubectl-coalmine "
                f"{__version__}; upgrade the plugin to match the operator.\n{error}",
                err=True,
            )
            sys.exit(1)

    return run


def _open(
    ctx: click.Context,
    kubeconfig: str | None = None,
    context: str | None = None,
    namespace: str | None = None,
) -> Cluster:
    deps: Deps = ctx.ensure_object(Deps)
    return deps.connect(kubeconfig, context, namespace)


@click.group()
@click.version_option(__version__, prog_name="kubectl-coalmine")
def cli() -> None:
    """Watch and steer coalmine canary rollouts (ModelDeployments)."""


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from error


@cli.command()
@click.argument("name")
@click.option("-w", "--watch", is_flag=True, help="Keep the view updated until Ctrl-C.")
@click.option(
    "--wait",
    is_flag=True,
    help="Wait until the spec's revision is promoted (exit 0), rolled back (6) or failed (7).",
)
@click.option(
    "--timeout",
    callback=_duration,
    help="With --wait: give up after this long (30s, 15m, 1h), exit 8. Default: no limit.",
)
@click.option("--interval", default=2.0, show_default=True, help="Seconds between refreshes.")
@_cluster_options
@click.pass_context
@_reports_errors
def status(
    ctx: click.Context,
    name: str,
    watch: bool,
    wait: bool,
    timeout: timedelta | None,
    interval: float,
    **where: Any,
) -> None:
    """Show the rollout: step, weights, checks with numbers, Conditions, Events."""
    if watch and wait:
        raise click.UsageError("--watch and --wait do not go together")
    if timeout is not None and not wait:
        raise click.UsageError("--timeout goes with --wait")
    cluster, deps = _open(ctx, **where), ctx.ensure_object(Deps)
    if wait:
        sys.exit(_wait(cluster, name, deps, timeout, interval))
    if not watch:
        click.echo(_page(cluster, name, deps.now()), nl=False)
        return
    interactive, last = sys.stdout.isatty(), None
    try:
        while True:
            obj, events = _snapshot(cluster, name)
            page = render_status(obj, events, deps.now())
            # A terminal is redrawn every tick (ages move); a pipe gets a page per change only.
            key = (obj.get("metadata", {}).get("resourceVersion"), len(events or []))
            if interactive or key != last:
                click.echo(CLEAR_SCREEN if interactive else f"--- {rfc3339(deps.now())}")
                click.echo(page, nl=False)
            last = key
            deps.sleep(interval)
    except KeyboardInterrupt:
        return


def _wait(
    cluster: Cluster, name: str, deps: Deps, timeout: timedelta | None, interval: float
) -> int:
    """Poll until the rollout of the current generation ends or ``timeout`` passes; a line
    per change while waiting, then the status page (the decision record) and the ending."""
    deadline = None if timeout is None else deps.now() + timeout
    last = None
    while True:
        obj = cluster.get(name)
        line, over = progress_line(obj), ending(obj)
        if line != last:
            click.echo(f"{rfc3339(deps.now())} {line}")
            last = line
        if over is None and timeout is not None and deadline is not None and deps.now() >= deadline:
            click.echo(_page(cluster, name, deps.now()), nl=False)
            click.echo(f"timed out after {format_duration(timeout)}: the rollout is still running")
            return TIMED_OUT
        if over is not None:
            click.echo(_page(cluster, name, deps.now()), nl=False)
            click.echo(over.summary)
            return over.exit_code
        deps.sleep(interval)


def _snapshot(cluster: Cluster, name: str) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    return cluster.get(name), cluster.events(name)


def _page(cluster: Cluster, name: str, now: datetime) -> str:
    obj, events = _snapshot(cluster, name)
    return render_status(obj, events, now)


@cli.command()
@click.argument("name")
@_cluster_options
@click.pass_context
@_reports_errors
def history(ctx: click.Context, name: str, **where: Any) -> None:
    """List how recent revisions ended (promoted, rolled back, ...)."""
    obj = _open(ctx, **where).get(name)
    click.echo(render_history(obj, ctx.ensure_object(Deps).now()), nl=False)


def _request(ctx: click.Context, control: Control, name: str, force: bool, where: Any) -> None:
    """Check the control makes sense now, then set its annotation."""
    cluster, deps = _open(ctx, **where), ctx.ensure_object(Deps)
    refused = refusal(control, name, read_status(cluster.get(name)))
    if refused is not None and not force:
        raise CliError(refused.message + " (use --force to request it anyway)")
    now = deps.now()
    cluster.patch(name, annotation_patch(control, now))
    click.echo(
        f"{control.value} requested for {cluster.namespace}/{name} at {rfc3339(now)}; "
        f"the operator acts on its next tick (follow with: kubectl coalmine status {name} -w)"
    )


_force = click.option(
    "--force", is_flag=True, help="Request it even if the status says it has no effect."
)


@cli.command()
@click.argument("name")
@click.option("--full", is_flag=True, help="Skip the analysis too, not only the remaining steps.")
@_force
@_cluster_options
@click.pass_context
@_reports_errors
def promote(ctx: click.Context, name: str, full: bool, force: bool, **where: Any) -> None:
    """Skip the remaining steps (analysis must not be failing).

    With --full, skip the analysis as well."""
    _request(ctx, Control.PROMOTE_FULL if full else Control.PROMOTE, name, force, where)


@cli.command()
@click.argument("name")
@_force
@_cluster_options
@click.pass_context
@_reports_errors
def abort(ctx: click.Context, name: str, force: bool, **where: Any) -> None:
    """Roll the canary back now.

    Traffic goes to stable first, then the canary is scaled down."""
    _request(ctx, Control.ABORT, name, force, where)


@cli.command()
@click.argument("name")
@_force
@_cluster_options
@click.pass_context
@_reports_errors
def retry(ctx: click.Context, name: str, force: bool, **where: Any) -> None:
    """Start the newest revision again after a rollback or failure.

    Also restarts analysis that paused the canary because it stayed inconclusive too long."""
    _request(ctx, Control.RETRY, name, force, where)


@cli.command("rotate-keys")
@click.argument("name")
@_cluster_options
@click.pass_context
@_reports_errors
def rotate_keys(ctx: click.Context, name: str, **where: Any) -> None:
    """Add a new receipt-signing key now (say, after a key may have leaked).

    Pods sign with it once every pod has it (the operator's activation delay); older keys
    keep verifying until the labels they signed for have expired."""
    _request(ctx, Control.ROTATE_KEYS, name, False, where)


def _set_paused(ctx: click.Context, name: str, paused: bool, where: Any) -> None:
    cluster = _open(ctx, **where)
    verb = "paused" if paused else "resumed"
    if bool(cluster.get(name).get("spec", {}).get("paused", False)) == paused:
        click.echo(
            f"{cluster.namespace}/{name} is already {verb} (spec.paused: {str(paused).lower()})"
        )
        return
    cluster.patch(name, paused_patch(paused))
    click.echo(f"{cluster.namespace}/{name} {verb} (spec.paused: {str(paused).lower()})")


@cli.command()
@click.argument("name")
@_cluster_options
@click.pass_context
@_reports_errors
def pause(ctx: click.Context, name: str, **where: Any) -> None:
    """Hold the rollout where it is (spec.paused: true).

    Abort still works while paused."""
    _set_paused(ctx, name, True, where)


@cli.command()
@click.argument("name")
@_cluster_options
@click.pass_context
@_reports_errors
def resume(ctx: click.Context, name: str, **where: Any) -> None:
    """Let a paused rollout continue (spec.paused: false)."""
    _set_paused(ctx, name, False, where)


@cli.command()
@click.option("--address", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--prometheus",
    metavar="URL",
    help="Prometheus to chart checks from (default: the object's analysis.prometheus.address).",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Serve on a non-loopback address (anyone reaching it reads your rollouts).",
)
@click.option("--interval", default=3.0, show_default=True, help="Seconds between cluster polls.")
@click.option(
    "--namespace-label",
    default="namespace",
    show_default=True,
    help="Series label holding the pod's namespace (the operator's setting of that name).",
)
@click.option("-n", "--namespace", help="Only this namespace (default: all namespaces).")
@click.option("--context", help="The kubeconfig context to use.")
@click.option("--kubeconfig", help="Path to the kubeconfig file (default: $KUBECONFIG).")
@_reports_errors
def dashboard(**options: Any) -> None:
    """Serve a live, read-only page of every rollout on http://127.0.0.1:8765/.

    Steps, weight over time, each check against its threshold over time (Prometheus range
    queries, measured as the operator measures), and the last promotion or rollback."""
    from coalmine.cli.dashboard.command import serve  # the web server loads only here

    serve(**options)


def main() -> None:
    """Entry point of the ``kubectl-coalmine`` console script."""
    cli(prog_name="kubectl coalmine")
