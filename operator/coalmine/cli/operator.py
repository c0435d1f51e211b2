"""``coalmine operator``: run the kopf operator (one replica: kopf peering is not leader
election, so the chart runs a single pod with the Recreate strategy)."""

from __future__ import annotations

import logging

import click


@click.command("operator")
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    multiple=True,
    help="Watch this namespace (repeatable); default: $COALMINE_NAMESPACES, else all namespaces.",
)
@click.option("--liveness-port", type=int, default=None, help="Port of /healthz (0 disables).")
@click.option("--metrics-port", type=int, default=None, help="Port of /metrics (0 disables).")
@click.option("--verbose", is_flag=True, help="Debug logging.")
def operator(
    namespaces: tuple[str, ...], liveness_port: int | None, metrics_port: int | None, verbose: bool
) -> None:
    """Run the ModelDeployment operator."""
    import kopf
    from prometheus_client import REGISTRY, start_http_server

    from coalmine.analysis.prometheus import PrometheusProvider
    from coalmine.handlers import register
    from coalmine.k8s.client import connect
    from coalmine.notify import Notifier
    from coalmine.reconcile import Deps
    from coalmine.settings import load_settings

    settings = load_settings(
        namespaces=list(namespaces) or None, liveness_port=liveness_port, metrics_port=metrics_port
    )
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.PLAIN)
    notifier = Notifier.from_settings(settings)
    REGISTRY.register(notifier.counts())
    deps = Deps(
        kube=connect(prefer_in_cluster=True),  # as kopf logs in: we write where it watches
        providers=PrometheusProvider,
        settings=settings,
        notifier=notifier,
    )
    if settings.metrics_port:  # the default registry: coalmine.opmetrics.DEFAULT and process_*
        start_http_server(settings.metrics_port, addr="0.0.0.0")  # Prometheus scrapes the pod IP
    liveness = (
        f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None
    )
    kopf.run(
        registry=register(settings, deps),
        standalone=True,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=liveness,
    )


if __name__ == "__main__":
    operator()
