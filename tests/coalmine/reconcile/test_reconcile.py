"""reconcile() with fakes of our own interfaces: the order of writes, one status write per
tick, Events and consumed controls. The engine is replaced by a scripted decide function."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from coalmine.api import ModelDeploymentSpec, RevisionRef
from coalmine.api.status import ModelDeploymentStatus, Phase
from coalmine.k8s import ObjectRef
from coalmine.reconcile import Deps, reconcile
from coalmine.rollout.types import Action, ChildPlan, Decision, Event, Observations
from coalmine.settings import OperatorSettings
from tests.coalmine.fakes import FakeKube, FakeProvider

NOW = datetime(2026, 1, 1, tzinfo=UTC)
MODEL = {"name": "iris", "version": "v2", "uri": "file:///m.onnx", "format": "onnx"}
V1 = RevisionRef(revision="r1", version="v1", uri="file:///m1.onnx", format="onnx")
V2 = RevisionRef(revision="r2", version="v2", uri="file:///m.onnx", format="onnx")


def _md(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "coalmine.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": "ml", "uid": "u1", "generation": 2,
                     "annotations": annotations or {}},
        "spec": {"model": MODEL},
    }  # fmt: skip


def _deps(kube: FakeKube, decision: Decision, seen: list[Observations]) -> Deps:
    def decide(
        spec: ModelDeploymentSpec, status: ModelDeploymentStatus, obs: Observations, now: datetime
    ) -> Decision:
        seen.append(obs)
        return decision

    return Deps(
        kube=kube,
        providers=lambda address, timeout: FakeProvider(),
        settings=OperatorSettings(),
        clock=lambda: NOW,
        decide=decide,
    )


def _decision(weight: int, canary: ChildPlan | None, **extra: Any) -> Decision:
    status = ModelDeploymentStatus(phase=Phase.ROLLING_BACK, stable=V1, canary=V2, weight=weight)
    return Decision(
        action=Action.ROLL_BACK,
        stable=ChildPlan(V1, 2),
        canary=canary,
        canary_weight=weight,
        status=status,
        events=(Event("Warning", "RollingBack", "error-rate 0.2 > 0.05"),),
        requeue_after=3.0,
        **extra,
    )


def _serving_canary(kube: FakeKube) -> None:
    """Canary at 1 ready pod behind a Service spanning both variants."""
    for variant, replicas, revision in (("stable", 2, "r1"), ("canary", 1, "r2")):
        kube.put({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"iris-{variant}", "namespace": "ml", "generation": 1,
                         "labels": {"coalmine.dev/revision": revision}},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": 1, "updatedReplicas": replicas,
                       "readyReplicas": replicas},
        })  # fmt: skip
    kube.put({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "iris", "namespace": "ml"},
        "spec": {"selector": {"coalmine.dev/model-deployment": "iris"}},
    })  # fmt: skip


def test_lowering_the_weight_moves_traffic_before_touching_deployments():
    kube = FakeKube()
    kube.put(_md({"coalmine.dev/abort": ""}))
    _serving_canary(kube)
    seen: list[Observations] = []
    decision = _decision(0, None, consumed_controls=("abort",))
    assert reconcile(_deps(kube, decision, seen), "ml", "iris") == 3.0
    assert seen[0].canary_weight == 33  # 1 of 3 ready pods
    assert seen[0].controls.abort
    assert kube.calls == [
        ("apply", "Service", "iris"),  # traffic to stable first
        ("apply", "Deployment", "iris-stable"),
        ("scale", "Deployment", "iris-canary"),  # then the canary goes to zero
        ("status", "ModelDeployment", "iris"),
        ("unannotate", "ModelDeployment", "coalmine.dev/abort"),
    ]
    assert kube.events == [("Warning", "RollingBack", "error-rate 0.2 > 0.05")]


def test_raising_the_weight_starts_pods_before_routing_to_them():
    kube = FakeKube()
    kube.put(_md())
    seen: list[Observations] = []
    _serving_canary(kube)
    kube.apply({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "iris", "namespace": "ml"},
        "spec": {"selector": {"coalmine.dev/model-deployment": "iris",
                              "coalmine.dev/variant": "stable"}},
    })  # fmt: skip
    kube.calls.clear()
    reconcile(_deps(kube, _decision(50, ChildPlan(V2, 2)), seen), "ml", "iris")
    assert seen[0].canary_weight == 0
    assert [c[:3] for c in kube.calls[:3]] == [
        ("apply", "Deployment", "iris-stable"),
        ("apply", "Deployment", "iris-canary"),
        ("apply", "Service", "iris"),
    ]


def test_unchanged_status_is_not_written_again():
    kube = FakeKube()
    decision = _decision(0, None)
    body = _md()
    body["status"] = decision.status.to_manifest()
    kube.put(body)
    reconcile(_deps(kube, decision, []), "ml", "iris")
    assert ("status", "ModelDeployment", "iris") not in kube.calls


def test_a_deleted_object_is_left_to_the_garbage_collector():
    kube = FakeKube()
    assert reconcile(_deps(kube, _decision(0, None), []), "ml", "iris") is None
    body = _md()
    body["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    kube.put(body)
    assert reconcile(_deps(kube, _decision(0, None), []), "ml", "iris") is None
    assert kube.calls == []


def test_an_invalid_spec_is_reported_in_status():
    kube = FakeKube()
    body = _md()
    body["spec"]["model"]["format"] = "pickle"
    kube.put(body)
    assert reconcile(_deps(kube, _decision(0, None), []), "ml", "iris") is None
    written = kube.get(ObjectRef("ModelDeployment", "ml", "iris"))
    assert written is not None
    (ready,) = written["status"]["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "InvalidSpec")
