"""``coalmine operator``: run the kopf operator, leader-elected.

Every replica serves ``/healthz`` and competes for the Lease (``coalmine.leadership``); only
the one holding it runs kopf, so a standby writes nothing at all, kopf's own bookkeeping
included. A leader that cannot renew stops acting at its renew deadline and exits, to come
back as a standby.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import sys
import uuid
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from coalmine.k8s.client import KubernetesApi
    from coalmine.leadership import Elector
    from coalmine.settings import OperatorSettings

log = logging.getLogger(__name__)
STEPPED_DOWN = 3
"""Exit code of a leader that lost its Lease (the kubelet restarts it as a standby)."""


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

    from coalmine import leadership, opmetrics
    from coalmine.analysis.prometheus import SharedProviders
    from coalmine.handlers import register
    from coalmine.health import Health, serve
    from coalmine.k8s.cached import watched
    from coalmine.k8s.client import connect
    from coalmine.k8s.credentials import load
    from coalmine.notify import Notifier
    from coalmine.reconcile import Deps
    from coalmine.settings import load_settings

    settings = load_settings(
        namespaces=list(namespaces) or None, liveness_port=liveness_port, metrics_port=metrics_port
    )
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.PLAIN)
    # force: kopf.configure added its own root handler, and with ours every line was written
    # twice (docs/benchmarks.md, B9); one handler, with the time, level and logger.
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # httpx logs every request at INFO: one line per Prometheus query (docs/benchmarks.md, B9).
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose else logging.WARNING)
    # kopf logs "Handler ... succeeded" for every watch event: at 50 canaries writing status
    # that was 300 lines a minute saying nothing (docs/benchmarks.md, B9). Its warnings and
    # errors (a handler failing, a watch retrying) still show.
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if verbose else logging.WARNING)
    kube = connect(prefer_in_cluster=True)  # as kopf logs in: we write where it watches
    notifier = Notifier.from_settings(settings)
    REGISTRY.register(notifier.counts())
    health = Health(settings.liveness_stall_seconds, settings.liveness_watch_grace_seconds)
    elector = None
    if settings.leader_election:
        elector = _elector(settings, kube)
        health.leading = elector.is_leader
        health.standby_alive_since = elector.seconds_of_last_attempt
        leadership.install(elector.is_leader)
        opmetrics.set_leader(False)  # a standby until the Lease is ours
    else:
        leadership.install(lambda: True)
    if settings.liveness_port:
        serve(health, settings.liveness_port)
    if settings.metrics_port:  # the default registry: coalmine.opmetrics.DEFAULT and process_*
        start_http_server(settings.metrics_port, addr="0.0.0.0")  # Prometheus scrapes the pod IP
    if elector is not None:
        log.info("leader election: %s waits for Lease %s", elector.identity, elector.lease)
        elector.acquire()
        opmetrics.set_leader(True)
        elector.keep_leading(on_lost=_step_down)
    # Watches start once this process leads: a standby reads nothing but its Lease.
    cached, _ = watched(kube, load(prefer_in_cluster=True)[0], settings.namespaces)
    deps = Deps(
        kube=leadership.LeaderOnly(cached, leadership.is_leader, health.wrote_status),
        providers=SharedProviders(),
        settings=settings,
        notifier=notifier,
    )
    # What is on the heap by now (the modules: kubernetes' generated models, pydantic, kopf)
    # lives as long as the process: out of the collector's full passes, which walked all of
    # it (120 ms each, 7% of the operator's CPU with 30 canaries analysing, B9).
    gc.freeze()
    try:
        kopf.run(
            registry=register(settings, deps, health, leadership.is_leader),
            standalone=True,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
        )
    finally:
        if elector is not None:
            elector.release()


def _elector(settings: OperatorSettings, kube: KubernetesApi) -> Elector:
    from coalmine import leadership
    from coalmine.k8s import ObjectRef

    namespace = (
        settings.leader_election_namespace or os.environ.get("POD_NAMESPACE") or kube.namespace
    )
    # The pod's name (its host name in a cluster) says who leads; the suffix keeps two
    # processes on one host (a local run, a test) apart.
    identity = f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    timing = leadership.Timing(
        settings.lease_duration_seconds,
        settings.renew_deadline_seconds,
        settings.retry_period_seconds,
    )
    lease = ObjectRef("Lease", namespace, settings.leader_election_lease_name)
    return leadership.Elector(kube, lease, identity, timing)


def _step_down() -> None:
    """Leadership is gone: nothing of this process may act any more. kopf cannot be paused,
    so exit at once (no cleanup, no final writes); the restarted process is a standby."""
    from coalmine import opmetrics

    opmetrics.set_leader(False)
    sys.stderr.flush()
    os._exit(STEPPED_DOWN)


if __name__ == "__main__":
    operator()
