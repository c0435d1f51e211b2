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


def _with_drift(spec: ModelDeploymentSpec, drift: dict[str, Any]) -> ModelDeploymentSpec:
    checks = [{"name": "inputs", "drift": drift}]
    canary = {"steps": [{"weight": 10}], "analysis": {"checks": checks}}
    return ModelDeploymentSpec.model_validate({**spec.to_manifest(), "canary": canary})


def _server_args(manifest: dict[str, Any]) -> list[str]:
    args: list[str] = manifest["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_both_sides_bucket_the_same_inputs_and_a_threshold_change_rolls_no_pod():
    """Stable's pods come from its own runtime record, yet take the input features from
    today's spec: a drift comparison needs the same buckets on both sides."""
    old = _spec("v1", {})
    v1 = RevisionRef(revision=old.revision(), version="v1", uri=MODEL["uri"], format="onnx")
    inputs = [{"name": "petal_width", "index": 3, "edges": [0.5, 1.5]},
              {"name": "sepal_length", "index": 0, "edges": [5, 6]}]  # fmt: skip
    new = _with_drift(_spec("v2", {"A": "1"}), {"max": 0.2, "inputs": inputs})
    v2 = RevisionRef(revision=new.revision(), version="v2", uri=MODEL["uri"], format="onnx")
    kube, settings = FakeKube(), OperatorSettings()
    subject = _subject(new)
    kube.put(manifests.deployment(subject.owner, old, "stable", v1, 2, settings))
    observed = _observed(kube, subject)

    def built(spec: ModelDeploymentSpec, variant: manifests.Variant, rev: RevisionRef) -> Any:
        from_spec = template_spec(observed, spec, rev.revision)
        return manifests.deployment(subject.owner, from_spec, variant, rev, 1, settings)

    stable, canary = built(new, "stable", v1), built(new, "canary", v2)
    flag = "petal_width=3:0.5,1.5;sepal_length=0:5.0,6.0"
    for side in (stable, canary):
        args = _server_args(side)
        assert args[args.index("--input-features") + 1] == flag
    assert all(e["name"] != "A" for e in stable["spec"]["template"]["spec"]["containers"][0]["env"])
    assert "--input-features" not in _server_args(built(old, "stable", v1))
    # Thresholds and method are not in the flag: stable's pod template stays byte for byte.
    stricter = _with_drift(new, {"method": "chiSquare", "max": 0.05, "inputs": inputs})
    assert built(stricter, "stable", v1)["spec"]["template"] == stable["spec"]["template"]
    assert stricter.revision() == new.revision()
