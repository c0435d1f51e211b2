"""A pure simulator that runs ``decide`` tick by tick against a fake cluster and a fake clock.

It fakes only OUR interfaces: the cluster is reduced to what ``Observations`` carries (two
Deployments and the router's weight), and it applies a ``Decision`` the way the operator is
specified to (router first when the weight goes down, Deployments first when it goes up).
Pods become ready on the tick after they are asked for, unless their revision is "broken".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from coalmine.api import ModelDeploymentSpec, ModelDeploymentStatus, RevisionRef, RouterKind
from coalmine.rollout import (
    ChildObservation,
    ChildPlan,
    Controls,
    Decision,
    Measurement,
    Observations,
    SideMeasurement,
    decide,
    observed_weight,
)
from coalmine.rollout.types import FetchFailure

T0 = datetime(2026, 1, 1, tzinfo=UTC)
Measure = Callable[["Sim"], tuple[Measurement, ...] | None]


def spec_for(version: str = "v1", **overrides: object) -> ModelDeploymentSpec:
    """A spec with one model version; ``overrides`` are camelCase manifest fields."""
    manifest: dict[str, object] = {
        "model": {
            "name": "iris",
            "version": version,
            "uri": f"file:///m/{version}.onnx",
            "format": "onnx",
        },
        "runtime": {"replicas": 4},
    }
    manifest.update(overrides)
    return ModelDeploymentSpec.model_validate(manifest)


def with_version(spec: ModelDeploymentSpec, version: str) -> ModelDeploymentSpec:
    model = spec.model.model_copy(update={"version": version, "uri": f"file:///m/{version}.onnx"})
    return spec.model_copy(update={"model": model})


@dataclass
class FakeDeployment:
    revision: str
    replicas: int
    ready: int = 0
    ref: RevisionRef | None = None
    """Its ``coalmine.dev/revision-ref`` record (None: written by an older operator)."""

    def observe(self) -> ChildObservation:
        return ChildObservation(
            self.revision,
            self.replicas,
            self.ready,
            self.ready >= self.replicas,
            revision_ref=self.ref,
        )


def value_check(value: float, samples: float = 1000.0) -> tuple[Measurement, ...]:
    """One measurement of the ``custom`` PromQL check (see ``VALUE_CHECK``)."""
    return (Measurement("custom", SideMeasurement(value=value, samples=samples), None),)


VALUE_CHECK = [{"name": "custom", "promql": {"query": "x", "max": 1.0}}]
"""A check whose verdict a test scripts: value 0.5 passes, 2.0 fails, NaN is inconclusive."""


@dataclass
class Sim:
    spec: ModelDeploymentSpec
    measure: Measure = lambda sim: value_check(0.5)
    now: datetime = T0
    status: ModelDeploymentStatus = field(default_factory=ModelDeploymentStatus)
    stable: FakeDeployment | None = None
    canary: FakeDeployment | None = None
    weight: int | None = 0
    broken: set[str] = field(default_factory=set)
    """Revisions whose pods never become ready."""
    router_stuck: bool = False
    """The router ignores weight changes (a slow or failing mesh)."""
    fetch_failures: dict[str, FetchFailure] = field(default_factory=dict)
    """Revision -> why its pods' model fetch fails (reported like observe does: only while
    that Deployment is not fully ready); put the revision in ``broken`` too."""
    controls: Controls = field(default_factory=Controls)
    decisions: list[Decision] = field(default_factory=list)
    observed: list[Observations] = field(default_factory=list)
    max_step: float = 30.0

    def observed_weight(self) -> int | None:
        """What the operator reports: the router's weight (gatewayAPI), or the ready-pod ratio
        while the Service spans both variants (replicas)."""
        if self.weight is None or self.spec.traffic.router == RouterKind.GATEWAY_API:
            return self.weight
        stable = self.stable.ready if self.stable else 0
        canary = self.canary.ready if self.canary else 0
        return observed_weight(stable, canary, selector_spans_both=self.weight > 0)

    def observe(self) -> Observations:
        weight = self.observed_weight()
        # A shadow step's canary serves mirrored requests only: measured at weight 0.
        shadowing = any(s.is_shadow for s in self.spec.canary.steps) and bool(self.canary)
        serving = (weight or 0) > 0 or shadowing
        return Observations(
            generation=1,
            stable=self.stable.observe() if self.stable else None,
            canary=self.canary.observe() if self.canary else None,
            canary_weight=weight,
            measurements=self.measure(self) if serving else None,
            controls=self.controls,
            canary_fetch=self._fetch_failure(self.canary),
            stable_fetch=self._fetch_failure(self.stable),
        )

    def _fetch_failure(self, child: FakeDeployment | None) -> FetchFailure | None:
        if child is None or child.replicas == 0 or child.ready >= child.replicas:
            return None
        return self.fetch_failures.get(child.revision or "")

    def tick(self) -> Decision:
        obs = self.observe()
        decision = decide(self.spec, self.status, obs, self.now)
        self.observed.append(obs)
        self.decisions.append(decision)
        self.apply(decision)
        self.status = decision.status
        self.controls = replace(
            self.controls, promote=False, promote_full=False, abort=False, retry=False
        )
        self.now += timedelta(seconds=min(self.max_step, max(1.0, decision.requeue_after)))
        return decision

    def apply(self, d: Decision) -> None:
        """Router first when the weight goes down, Deployments first when it goes up; pods
        that were asked for in an earlier tick become ready now (the order matters only for
        what a crash in between would leave behind, see the rollback tests)."""
        self._settle()
        if not self.router_stuck:
            self.weight = d.canary_weight
        self.stable = self._child(self.stable, d.stable)
        self.canary = self._child(self.canary, d.canary)

    def _child(
        self, current: FakeDeployment | None, plan: ChildPlan | None
    ) -> FakeDeployment | None:
        if plan is None:
            return None if current is None else replace(current, replicas=0, ready=0)
        if current is None or current.revision != plan.revision.revision:
            return FakeDeployment(plan.revision.revision, plan.replicas, 0, plan.revision)
        return replace(current, replicas=plan.replicas, ready=min(current.ready, plan.replicas))

    def _settle(self) -> None:
        for child in (self.stable, self.canary):
            if child is not None and child.revision not in self.broken:
                child.ready = child.replicas

    def run(self, ticks: int) -> list[Decision]:
        return [self.tick() for _ in range(ticks)]

    def run_until(self, done: Callable[[Sim], bool], limit: int = 500) -> Decision:
        for _ in range(limit):
            decision = self.tick()
            if done(self):
                return decision
        raise AssertionError(
            f"not done after {limit} ticks: {self.status.phase} {self.status.message}"
        )

    def healthy_on(self, version: str) -> None:
        """Deploy ``version`` as the first revision and run until it is Healthy."""
        self.spec = with_version(self.spec, version)
        self.run_until(lambda s: s.status.phase == "Healthy")

    def actions(self) -> list[str]:
        return [str(d.action) for d in self.decisions]
