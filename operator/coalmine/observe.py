"""Observe: read the world for one tick (children, router, metrics, controls).

Everything the rest of the tick needs is read here, once: act only writes, from these
observations and the decision.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from contextlib import closing
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from coalmine import manifests
from coalmine.analysis import (
    EndpointNotAllowedError,
    MetricProvider,
    Scope,
    SideScope,
    choose_endpoint,
    refused_checks,
)
from coalmine.analysis.batch import BatchingProvider, batchable, prefetched
from coalmine.analysis.freshness import max_sample_age, staleness
from coalmine.analysis.measure import judged_sides, measure_check
from coalmine.api import ModelDeployment, ModelDeploymentStatus, RevisionRef
from coalmine.api.checks import Check
from coalmine.api.status import Phase
from coalmine.controls import parse_controls
from coalmine.k8s import KubeApi, Manifest, ObjectRef
from coalmine.k8s.children import deployment_observation
from coalmine.k8s.fetchfailure import fetch_failure
from coalmine.manifests import LABEL_REVISION, Variant, selector
from coalmine.manifests.receiptkeys import mirror_in, secret_name
from coalmine.rollout import analysis_window
from coalmine.rollout.types import (
    ChildObservation,
    FetchFailure,
    Measurement,
    MirrorObservation,
    Observations,
    QueryProblem,
    SideMeasurement,
)
from coalmine.routing import TrafficRouter
from coalmine.settings import OperatorSettings
from coalmine.subject import Subject


class ClosableProvider(MetricProvider, Protocol):
    def close(self) -> None: ...


@runtime_checkable
class PooledProvider(Protocol):
    """A provider with threads of its own for the queries of a tick (the operator's shared
    ones, ``coalmine.analysis.prometheus.SharedProviders``)."""

    pool: Executor


ProviderFactory = Callable[[str, timedelta], ClosableProvider]


def observe(
    kube: KubeApi,
    router: TrafficRouter,
    subject: Subject,
    md: ModelDeployment,
    receipt_secret: Manifest | None = None,
) -> Observations:
    """The cluster's side of a tick, without metrics: the engine decides on this first, and
    asks for a measurement (``Decision.wants_measurement``) only when it would fold one. So a
    rollback, an abort or a new revision is carried out without waiting for Prometheus."""
    stable = observe_child(kube, subject, Variant.STABLE)
    canary = observe_child(kube, subject, Variant.CANARY)
    starting = md.status is None or md.status.phase in (Phase.PENDING, Phase.FAILED)
    return Observations(
        generation=md.metadata.generation or 0,
        stable=stable,
        canary=canary,
        canary_weight=router.observe(subject.target, stable, canary),
        measurements=None,
        controls=parse_controls(md.metadata.annotations, md.spec.paused),
        mirror=observe_mirror(kube, subject, md, receipt_secret),
        canary_fetch=observe_fetch(kube, subject, Variant.CANARY, canary),
        stable_fetch=observe_fetch(kube, subject, Variant.STABLE, stable) if starting else None,
    )


def observe_fetch(
    kube: KubeApi, subject: Subject, variant: Variant, child: ChildObservation | None
) -> FetchFailure | None:
    """Why ``variant``'s model fetch failed, from its pods' init containers; read (one list)
    only while its Deployment wants pods that are not all ready, so a healthy tick costs no
    read. Only pods of the Deployment's current revision count: an older revision's pods
    (a superseded canary's, still terminating) say nothing about this one."""
    if child is None or child.revision is None:
        return None
    if child.replicas == 0 or (child.updated and child.ready_replicas >= child.replicas):
        return None
    labels = {**selector(subject.owner, variant), LABEL_REVISION: child.revision}
    return fetch_failure(kube.list_pods(subject.ref.namespace, labels))


def observe_mirror(
    kube: KubeApi, subject: Subject, md: ModelDeployment, secret: Manifest | None = None
) -> MirrorObservation:
    """The mirror file stable's pods read, and the canary Service's address (only when a
    shadow step could need it: one read fewer on every other tick). ``secret`` is the
    receipt-key Secret the tick already read for its keys; read here only without it."""
    if secret is None:
        secret = kube.get(ObjectRef("Secret", subject.ref.namespace, secret_name(subject.owner)))
    file = mirror_in(secret) if secret is not None else None
    address = None
    if any(step.is_shadow for step in md.spec.canary.steps):
        service = kube.get(subject.child_service(Variant.CANARY)) or {}
        ip = service.get("spec", {}).get("clusterIP")
        if ip and ip != "None":
            address = f"http://{ip}:{md.spec.traffic.port}"
    return MirrorObservation(file=file, canary_address=address)


def observe_child(kube: KubeApi, subject: Subject, variant: Variant) -> ChildObservation | None:
    """The Deployment as the engine sees it, plus the runtime record its pods were built from
    (act rebuilds an older revision's pods from it, without reading the Deployment again)."""
    body = kube.get(subject.child(variant))
    found = deployment_observation(body)
    if body is None or found is None:
        return None
    record = body.get("metadata", {}).get("annotations", {}).get(manifests.TEMPLATE_ANNOTATION)
    return replace(found, template=record)


def with_measurements(
    observed: Observations,
    subject: Subject,
    md: ModelDeployment,
    providers: ProviderFactory,
    settings: OperatorSettings,
    now: datetime,
) -> Observations:
    """``observed`` with every check measured, within the tick's analysis budget."""
    return replace(observed, measurements=measure(subject, md, providers, settings, now))


def measure(
    subject: Subject,
    md: ModelDeployment,
    providers: ProviderFactory,
    settings: OperatorSettings,
    now: datetime,
) -> tuple[Measurement, ...]:
    analysis = md.spec.canary.analysis
    status = md.status or ModelDeploymentStatus()
    checks = md.spec.canary.checks_at(status.current_step or 0)
    scope = scope_of(subject, md, status, settings, now)
    try:
        endpoint = choose_endpoint(analysis.prometheus, settings)
    except EndpointNotAllowedError as refused:
        return refused_checks(checks, refused.reason)
    timeout = query_timeout(endpoint.timeout, settings.analysis_budget)
    with closing(providers(endpoint.url, timeout)) as provider:
        pool = provider.pool if isinstance(provider, PooledProvider) else None
        return measure_within(provider, scope, checks, 2 * timeout.total_seconds(), pool)


def query_timeout(asked: timedelta, budget: timedelta) -> timedelta:
    """The endpoint's query timeout, cut so two queries in a row (a check queries the canary,
    then stable) fit in the operator's analysis budget. The tick waits twice this at most, and a
    thread it left behind ends by then too (its query times out), so silent Prometheus
    servers cannot pile up threads.

    >>> query_timeout(timedelta(seconds=5), timedelta(seconds=20))
    datetime.timedelta(seconds=5)
    >>> query_timeout(timedelta(minutes=2), timedelta(seconds=20))
    datetime.timedelta(seconds=10)
    """
    return min(asked, budget / 2)


def measure_within(
    provider: MetricProvider,
    scope: Scope,
    checks: Sequence[Check],
    budget: float,
    pool: Executor | None = None,
) -> tuple[Measurement, ...]:
    """Every check measured, within ``budget`` seconds: a check without an answer by then is
    a provider error, so a slow or silent Prometheus costs a tick at most ``budget``.

    A provider that answers several queries in one request gets them all at once, from this
    thread (``coalmine.analysis.batch``; the one request is bounded by the query timeout,
    half the budget). Otherwise, or when it cannot, each check and each side's freshness
    query is asked in a thread of its own (``in_threads``)."""
    if not checks:
        return ()
    if isinstance(provider, BatchingProvider) and batchable(checks):
        started = time.monotonic()
        answered = prefetched(provider, scope, checks)
        if answered is not None:
            return measured_from(answered, scope, checks)
        budget = max(budget - (time.monotonic() - started), 0.0)
    return in_threads(provider, scope, checks, budget, pool)


def measured_from(
    answered: MetricProvider, scope: Scope, checks: Sequence[Check]
) -> tuple[Measurement, ...]:
    """The checks measured from answers already fetched (no I/O, so no budget to keep)."""
    verdicts = {
        which: staleness(answered, side, scope.max_sample_age)
        for which, side in judged_sides(scope, checks).items()
    }
    return tuple(_unless_stale(_measured(answered, scope, c), verdicts) for c in checks)


def _measured(answered: MetricProvider, scope: Scope, check: Check) -> Measurement:
    try:
        return measure_check(answered, scope, check)
    except Exception as error:  # measure_check turns query failures into data; this is a bug's
        return _failed(check, f"{type(error).__name__}: {error}"[:200])


def in_threads(
    provider: MetricProvider,
    scope: Scope,
    checks: Sequence[Check],
    budget: float,
    pool: Executor | None = None,
) -> tuple[Measurement, ...]:
    """Every check measured at once, each in a thread of its own, beside the freshness query
    of each side. The threads are ``pool``'s, the provider's (one Prometheus's ticks share
    them, no other's), else this tick's alone. A late query is left to finish on its own (its
    query times out) and its answer is dropped; one still waiting for a thread is cancelled."""
    sides = judged_sides(scope, checks)
    own = pool is None
    threads = pool or ThreadPoolExecutor(
        max_workers=len(checks) + len(sides), thread_name_prefix="measure"
    )
    pending: list[Future[Any]] = []
    try:
        fresh = {
            which: threads.submit(staleness, provider, side, scope.max_sample_age)
            for which, side in sides.items()
        }
        futures = [threads.submit(measure_check, provider, scope, check) for check in checks]
        pending = [*futures, *fresh.values()]
        wait(pending, timeout=budget)
        verdicts = {which: _freshness(f, budget) for which, f in fresh.items()}
        return tuple(
            _unless_stale(_answer(f, c, budget), verdicts)
            for f, c in zip(futures, checks, strict=True)
        )
    finally:
        for future in pending:
            future.cancel()  # only one not started: a shared pool does not queue it further
        if own:
            threads.shutdown(wait=False, cancel_futures=True)


def _freshness(future: Future[SideMeasurement | None], budget: float) -> SideMeasurement | None:
    """None when the side is fresh; else what its checks get instead of their numbers. A
    freshness query with no answer is a provider error: the numbers cannot be trusted."""
    if not future.done():
        return SideMeasurement(
            error=f"freshness: no answer within the analysis budget of {budget:g}s",
            problem=QueryProblem.PROVIDER_ERROR,
        )
    if future.exception() is not None:
        return SideMeasurement(error="freshness query failed", problem=QueryProblem.PROVIDER_ERROR)
    return future.result()


def _unless_stale(
    measured: Measurement, freshness: dict[str, SideMeasurement | None]
) -> Measurement:
    """A side whose samples stopped (or whose freshness is unknown) is not judged on its
    numbers; a side whose own query failed keeps that failure (it says more)."""

    def side(which: str, numbers: SideMeasurement | None) -> SideMeasurement | None:
        instead = freshness.get(which)
        if numbers is None or instead is None or numbers.error is not None:
            return numbers
        return instead

    canary = side("canary", measured.canary)
    assert canary is not None
    return replace(measured, canary=canary, stable=side("stable", measured.stable))


def _answer(future: Future[Measurement], check: Check, budget: float) -> Measurement:
    if not future.done():
        return _failed(check, f"no answer within the analysis budget of {budget:g}s")
    error = future.exception()
    if error is not None:  # measure_check turns query failures into data; this is a bug's
        return _failed(check, f"{type(error).__name__}: {error}"[:200])
    return future.result()


def _failed(check: Check, why: str) -> Measurement:
    side = SideMeasurement(error=why, problem=QueryProblem.PROVIDER_ERROR)
    return Measurement(check=check.name, canary=side, stable=side)


def scope_of(
    subject: Subject,
    md: ModelDeployment,
    status: ModelDeploymentStatus,
    settings: OperatorSettings,
    now: datetime,
) -> Scope:
    """Canary and stable series by their own version labels: no hand-written PromQL.

    The query range covers the whole current step (at least the analysis window, never
    before this canary started), so evidence accumulates over a step; the engine's error
    rates are calibrated for that. Samples older than three scrape intervals make a side
    stale (``coalmine.analysis.freshness``).
    """

    def side(revision: RevisionRef, variant: str) -> SideScope:
        return SideScope(
            model=md.spec.model.name,
            version=revision.version,
            variant=variant,
            namespace=subject.ref.namespace,
            namespace_label=settings.prometheus_namespace_label,
            revision=revision.revision,
        )

    assert status.canary is not None
    stable = side(status.stable, "stable") if status.stable else None
    window = analysis_window(md.spec.canary, status.step_started_at, now, status.canary_started_at)
    return Scope(
        canary=side(status.canary, "canary"),
        stable=stable,
        window=window,
        max_sample_age=max_sample_age(timedelta(seconds=settings.scrape_interval_seconds)),
    )
