"""Observe: read the world for one tick (children, router, metrics, controls).

Everything the rest of the tick needs is read here, once: act only writes, from these
observations and the decision.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from coalmine import manifests
from coalmine.analysis import MetricProvider, Scope, SideScope, measure_checks
from coalmine.analysis.freshness import max_sample_age
from coalmine.api import ModelDeployment, ModelDeploymentStatus, RevisionRef
from coalmine.controls import parse_controls
from coalmine.k8s import KubeApi
from coalmine.k8s.children import deployment_observation
from coalmine.manifests import Variant
from coalmine.rollout import analysis_window
from coalmine.rollout.policy import measurement_due
from coalmine.rollout.types import ChildObservation, Measurement, Observations
from coalmine.routing import TrafficRouter
from coalmine.settings import OperatorSettings
from coalmine.subject import Subject


class ClosableProvider(MetricProvider, Protocol):
    def close(self) -> None: ...


ProviderFactory = Callable[[str, timedelta], ClosableProvider]


def observe(
    kube: KubeApi,
    router: TrafficRouter,
    subject: Subject,
    md: ModelDeployment,
    providers: ProviderFactory,
    settings: OperatorSettings,
    now: datetime,
) -> Observations:
    stable = observe_child(kube, subject, Variant.STABLE)
    canary = observe_child(kube, subject, Variant.CANARY)
    weight = router.observe(subject.target, stable, canary)
    status = md.status or ModelDeploymentStatus()
    measurements = None
    if wants_measurement(status, weight, now, md.spec.canary.analysis.interval):
        measurements = measure(subject, md, status, providers, settings, now)
    return Observations(
        generation=md.metadata.generation or 0,
        stable=stable,
        canary=canary,
        canary_weight=weight,
        measurements=measurements,
        controls=parse_controls(md.metadata.annotations, md.spec.paused),
    )


def observe_child(kube: KubeApi, subject: Subject, variant: Variant) -> ChildObservation | None:
    """The Deployment as the engine sees it, plus the runtime record its pods were built from
    (act rebuilds an older revision's pods from it, without reading the Deployment again)."""
    body = kube.get(subject.child(variant))
    found = deployment_observation(body)
    if body is None or found is None:
        return None
    record = body.get("metadata", {}).get("annotations", {}).get(manifests.TEMPLATE_ANNOTATION)
    return replace(found, template=record)


def wants_measurement(
    status: ModelDeploymentStatus, weight: int | None, now: datetime, interval: timedelta
) -> bool:
    """Measure while a canary takes traffic, whenever the engine will count a measurement
    (``measurement_due``: the same rule the engine applies, so the two never disagree)."""
    if status.canary is None or not weight or status.current_step is None:
        return False
    return measurement_due(status.analysis, status.current_step, interval, now)


def measure(
    subject: Subject,
    md: ModelDeployment,
    status: ModelDeploymentStatus,
    providers: ProviderFactory,
    settings: OperatorSettings,
    now: datetime,
) -> tuple[Measurement, ...]:
    analysis = md.spec.canary.analysis
    address = analysis.prometheus.address or settings.default_prometheus_address
    scope = scope_of(subject, md, status, settings, now)
    with closing(providers(address, analysis.prometheus.timeout)) as provider:
        return measure_checks(provider, scope, analysis.checks)


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
