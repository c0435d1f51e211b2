"""``kubectl coalmine dashboard``: serve the page on loopback until Ctrl-C."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import click

from coalmine.cli.cluster import NO_CLUSTER, REQUEST_TIMEOUT, CliError

USAGE = 2
LOOPBACK_NAMES = ("localhost",)


def is_loopback(address: str) -> bool:
    """Whether only this machine can reach ``address``.

    >>> [is_loopback(a) for a in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "10.1.2.3")]
    [True, True, True, False, False]
    """
    if address in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def allowed_hosts(address: str) -> list[str]:
    """Host headers the server answers: the loopback names, and the address served. A
    non-loopback wildcard address (``0.0.0.0``) can be reached under any name, so any."""
    if address in ("0.0.0.0", "::"):
        return ["*"]
    return sorted({"127.0.0.1", "localhost", "::1", "[::1]", address})


def url(address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}/"


def serve(
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    address: str,
    port: int,
    prometheus: str | None,
    allow_remote: bool,
    interval: float,
    namespace_label: str,
) -> None:
    """Check the address, connect with the user's kubeconfig, then run until Ctrl-C."""
    if not is_loopback(address) and not allow_remote:
        raise CliError(
            f"refusing to serve on {address}: it is not a loopback address, and the page shows "
            "every ModelDeployment your kubeconfig can read to anyone who reaches the port, "
            "without authentication. Use --allow-remote to do it anyway.",
            USAGE,
        )
    import uvicorn  # loaded only for this command

    from coalmine.cli.dashboard.app import Dashboard, Settings, build_app
    from coalmine.cli.dashboard.prometheus import RangeClient
    from coalmine.cli.dashboard.source import KubeSource
    from coalmine.k8s import ConfigError
    from coalmine.k8s.client import connect

    try:
        api = connect(kubeconfig, context, timeout=REQUEST_TIMEOUT)
    except ConfigError as error:
        raise CliError(f"no usable kubeconfig: {error}", NO_CLUSTER) from error
    clients: dict[str, RangeClient] = {}

    def fetcher(address_: str) -> Any:
        client = clients.setdefault(address_, RangeClient(address_))
        return client.fetch

    settings = Settings(prometheus=prometheus, namespace_label=namespace_label, interval=interval)
    dashboard = Dashboard(KubeSource(api, namespace), settings, fetcher)
    app = build_app(dashboard, allowed_hosts(address))
    _check_port_free(address, port)
    where = namespace or "all namespaces"
    if not is_loopback(address):
        click.echo(f"warning: serving on {address}: reachable beyond this machine", err=True)
    click.echo(
        f"serving {url(address, port)} (read-only; ModelDeployments in {where}; Ctrl-C stops)"
    )
    uvicorn.run(app, host=address, port=port, log_level="warning", access_log=False)


def _check_port_free(address: str, port: int) -> None:
    """Say which port is taken in one line, rather than uvicorn's traceback."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as error:
            raise CliError(f"cannot listen on {url(address, port)}: {error.strerror}") from error
