"""Observe: read the world for one tick (children, router, metrics, controls)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timedelta
from typing import Protocol

from coalmine import manifests
from coalmine.analysis import MetricProvider, Scope, SideScope, measure_checks
from coalmine.api import ModelDeployment, ModelDeploymentStatus
from coalmine.controls import parse_controls
from coalmine.k8s import KubeApi, ObjectRef
from coalmine.k8s.children import deployment_observation
from coalmine.manifests import Variant
from coalmine.rollout import analysis_window
from coalmine.rollout.types import ChildObservation, Measurement, Observations
from coalmine.routing import RouteTarget, TrafficRouter
from coalmine.settings import OperatorSettings

# A measurement taken slightly early still counts as "one interval later": timer ticks jitter.
INTERVAL_SLACK = 0.9


class ClosableProvider(MetricProvider, Protocol):
    def close(self) -> None: ...


ProviderFactory = Callable[[str, timedelta], ClosableProvider]


def observe(
    kube: KubeApi,
    router: TrafficRouter,
    target: RouteTarget,
    md: ModelDeployment,
    providers: ProviderFactory,
    settings: OperatorSettings,
    now: datetime,
) -> Observations:
    owner = target.owner
    stable = _child(kube, owner, Variant.STABLE)
    canary = _child(kube, owner, Variant.CANARY)
    weight = router.observe(target, stable, canary)
    status = md.status or ModelDeploymentStatus()
    measurements = None
    if measurement_due(status, weight, now, md.spec.canary.analysis.interval):
        measurements = measure(md, status, providers, settings, now)
    return Observations(
        generation=md.metadata.generation or 0,
        stable=stable,
        canary=canary,
        canary_weight=weight,
        measurements=measurements,
        controls=parse_controls(md.metadata.annotations, md.spec.paused),
    )


def _child(
    kube: KubeApi, owner: manifests.Owner, variant: manifests.Variant
) -> ChildObservation | None:
    ref = ObjectRef("Deployment", owner.namespace, manifests.child_name(owner, variant))
    return deployment_observation(kube.get(ref))


def measurement_due(
    status: ModelDeploymentStatus, weight: int | None, now: datetime, interval: timedelta
) -> bool:
    """Measure while a canary takes traffic, once per analysis interval (read from status,
    so a restarted operator keeps the same cadence instead of measuring twice in a row)."""
    if status.canary is None or not weight or status.current_step is None:
        return False
    last = status.analysis
    if last is None or last.step != status.current_step:
        return True
    return (now - last.measured_at) >= interval * INTERVAL_SLACK


def measure(
    md: ModelDeployment,
    status: ModelDeploymentStatus,
    providers: ProviderFactory,
    settings: OperatorSettings,
    now: datetime,
) -> tuple[Measurement, ...]:
    analysis = md.spec.canary.analysis
    address = analysis.prometheus.address or settings.default_prometheus_address
    with closing(providers(address, analysis.prometheus.timeout)) as provider:
        return measure_checks(provider, scope_of(md, status, settings, now), analysis.checks)


def scope_of(
    md: ModelDeployment, status: ModelDeploymentStatus, settings: OperatorSettings, now: datetime
) -> Scope:
    """Canary and stable series by their own version labels: no hand-written PromQL.

    The query range covers the whole current step (at least the analysis window), so
    evidence accumulates over a step; the engine's error rates are calibrated for that.
    """
    namespace = md.metadata.namespace or ""

    def side(version: str, variant: str) -> SideScope:
        return SideScope(
            model=md.spec.model.name,
            version=version,
            variant=variant,
            namespace=namespace,
            namespace_label=settings.prometheus_namespace_label,
        )

    assert status.canary is not None
    stable = side(status.stable.version, "stable") if status.stable else None
    window = analysis_window(md.spec.canary, status.step_started_at, now)
    return Scope(canary=side(status.canary.version, "canary"), stable=stable, window=window)
