"""A revision's pods are built from the runtime it was created with, not today's spec; that
runtime comes from what observe read, so act never reads the Deployments again."""

from __future__ import annotations

from typing import Any

from coalmine import manifests
from coalmine.act import act, template_spec
from coalmine.api import ModelDeploymentSpec, ModelDeploymentStatus, RevisionRef
from coalmine.k8s import ObjectRef
from coalmine.observe import observe_child
from coalmine.rollout.types import Action, ChildPlan, Decision, Observations
from coalmine.routing import make_router
from coalmine.settings import OperatorSettings
from coalmine.subject import Subject
from tests.coalmine.fakes import FakeKube

MODEL = {"name": "iris", "version": "v1", "uri": "file:///m.onnx", "format": "onnx"}


def _spec(version: str, env: dict[str, str]) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {
            "model": {**MODEL, "version": version},
            "runtime": {"env": [{"name": k, "value": v} for k, v in env.items()]},
        }
    )


def _subject(spec: ModelDeploymentSpec) -> Subject:
    return Subject.build(ObjectRef("ModelDeployment", "ml", "iris"), "u1", spec)


def _observed(kube: FakeKube, subject: Subject) -> Observations:
    return Observations(
        generation=1,
        stable=observe_child(kube, subject, "stable"),
        canary=observe_child(kube, subject, "canary"),
        canary_weight=0,
        measurements=None,
    )


def test_a_canary_runtime_change_never_leaks_into_stable():
    old, new = _spec("v1", {}), _spec("v2", {"COALMINE_SERVING_FAULT_ERROR_RATE": "0.2"})
    v1 = RevisionRef(revision=old.revision(), version="v1", uri=MODEL["uri"], format="onnx")
    kube = FakeKube()
    subject = _subject(new)
    kube.put(manifests.deployment(subject.owner, old, "stable", v1, 2, OperatorSettings()))
    observed = _observed(kube, subject)
    assert observed.stable is not None and observed.stable.template  # observe kept the record
    rebuilt = template_spec(observed, new, v1.revision)
    assert rebuilt.runtime.env == []
    assert template_spec(observed, new, new.revision()) is new


def test_unknown_revision_falls_back_to_the_spec():
    spec = _spec("v2", {"A": "1"})
    observed = _observed(FakeKube(), _subject(spec))
    assert template_spec(observed, spec, "nope") is spec


class _ReadCountingKube(FakeKube):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[ObjectRef] = []

    def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        self.reads.append(ref)
        return super().get(ref)


def test_act_only_writes():
    """Rebuilding stable's older revision while a canary runs reads nothing: the runtime
    record came with the observation."""
    old, new = _spec("v1", {}), _spec("v2", {"A": "1"})
    v1 = RevisionRef(revision=old.revision(), version="v1", uri=MODEL["uri"], format="onnx")
    kube = _ReadCountingKube()
    subject = _subject(new)
    kube.put(manifests.deployment(subject.owner, old, "stable", v1, 2, OperatorSettings()))
    observed = _observed(kube, subject)
    decision = Decision(
        action=Action.WAIT,
        stable=ChildPlan(v1, 2),
        canary=None,
        canary_weight=0,
        status=ModelDeploymentStatus(),
        events=(),
        requeue_after=5.0,
    )
    kube.reads.clear()
    act(
        kube, make_router(new.traffic.router, kube), subject, observed, decision, OperatorSettings()
    )
    assert kube.reads == []
    stable = kube.get(subject.child("stable"))
    assert stable is not None
    env = stable["spec"]["template"]["spec"]["containers"]
    assert all(e.get("name") != "A" for c in env for e in c.get("env", []))
