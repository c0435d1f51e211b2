"""The ``coalmine`` command: CRD generation, offline validation and the operator."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from coalmine import __version__
from coalmine.cli.operator import operator


@click.group()
@click.version_option(__version__, prog_name="coalmine")
def cli() -> None:
    """coalmine: safe canary releases for machine-learning models on Kubernetes."""


@cli.command()
@click.option(
    "--write",
    "target",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the CRD to this file instead of standard output.",
)
def crd(target: Path | None) -> None:
    """Print the ModelDeployment CRD generated from the API models."""
    from coalmine.api.crdgen import render

    text = render()
    if target is None:
        click.echo(text, nl=False)
    else:
        target.write_text(text)
        click.echo(f"wrote {target}", err=True)


@cli.command()
@click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    help="Manifest file (YAML, may hold several documents); '-' for standard input.",
)
def validate(files: tuple[str, ...]) -> None:
    """Check ModelDeployment manifests offline, with the rules the API server applies."""
    from coalmine.api.validate import check_manifest, manifests_in

    checked, problems = 0, []
    for name in files:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
        for manifest in manifests_in(text):
            checked += 1
            problems.extend(check_manifest(manifest, name))
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        raise SystemExit(1)
    if checked == 0:
        click.echo("no ModelDeployment found", err=True)
        raise SystemExit(1)
    click.echo(f"{checked} ModelDeployment manifest(s) valid")


cli.add_command(operator)


def main() -> None:
    """Entry point of the ``coalmine`` console script."""
    cli()
