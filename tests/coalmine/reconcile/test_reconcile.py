"""reconcile() with fakes of our own interfaces and the real engine: the order of writes, one
status write per tick, Events and consumed controls. A spy around ``decide`` records what the
engine was shown, and passes the real decision on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from coalmine import reconcile as reconcile_module
from coalmine.api import ModelDeploymentSpec, RevisionRef
from coalmine.api.status import ModelDeploymentStatus, Phase
from coalmine.k8s import ConflictError, ObjectRef
from coalmine.reconcile import Deps, reconcile
from coalmine.rollout import decide
from coalmine.rollout.tick import WAIT_FOR_OBSERVATION
from coalmine.rollout.types import Observations
from coalmine.settings import OperatorSettings
from tests.coalmine.fakes import FakeKube, FakeProvider

NOW = datetime(2026, 1, 1, tzinfo=UTC)
MODEL = {"name": "iris", "version": "v2", "uri": "file:///m.onnx", "format": "onnx"}
SPEC = {"model": MODEL, "runtime": {"replicas": 2}, "canary": {"steps": [{"weight": 50}]}}
V1 = RevisionRef(revision="r1", version="v1", uri="file:///m1.onnx", format="onnx")
R2 = ModelDeploymentSpec.model_validate(SPEC).revision()
OURS = [{"kind": "ModelDeployment", "name": "iris", "uid": "u1", "controller": True}]
V2 = RevisionRef(revision=R2, version="v2", uri="file:///m.onnx", format="onnx")


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Observations]]:
    """The observations each tick handed to the (real) engine."""
    shown: list[Observations] = []

    def spy(spec: Any, status: Any, obs: Observations, now: datetime) -> Any:
        shown.append(obs)
        return decide(spec, status, obs, now)

    monkeypatch.setattr(reconcile_module, "decide", spy)
    yield shown


def _md(status: ModelDeploymentStatus | None, annotations: dict[str, str] | None = None) -> Any:
    body: dict[str, Any] = {
        "apiVersion": "coalmine.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": "ml", "uid": "u1", "generation": 2,
                     "annotations": annotations or {}},
        "spec": SPEC,
    }  # fmt: skip
    if status is not None:
        body["status"] = status.to_manifest()
    return body


def _deps(kube: FakeKube, clock: list[datetime] | None = None) -> Deps:
    moments = clock or [NOW]
    return Deps(
        kube=kube,
        providers=lambda address, timeout: FakeProvider(),
        settings=OperatorSettings(),
        clock=lambda: moments[0],
    )


def _in_flight(weight: int) -> ModelDeploymentStatus:
    """A canary at step 0, its pause started 10 s ago."""
    return ModelDeploymentStatus(
        phase=Phase.PROGRESSING, stable=V1, canary=V2, current_step=0, weight=weight,
        step_started_at=NOW - timedelta(seconds=10), canary_started_at=NOW - timedelta(minutes=1),
    )  # fmt: skip


def _serving_canary(kube: FakeKube) -> None:
    """Canary at 1 ready pod behind a Service spanning both variants."""
    for variant, replicas, revision in (("stable", 2, "r1"), ("canary", 1, R2)):
        kube.put({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"iris-{variant}", "namespace": "ml", "generation": 1,
                         "labels": {"coalmine.dev/revision": revision}, "ownerReferences": OURS},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": 1, "updatedReplicas": replicas,
                       "readyReplicas": replicas, "replicas": replicas},
        })  # fmt: skip
    kube.put({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "iris", "namespace": "ml", "ownerReferences": OURS},
        "spec": {"selector": {"coalmine.dev/model-deployment": "iris"}},
    })  # fmt: skip


def test_lowering_the_weight_moves_traffic_before_touching_deployments(seen):
    kube = FakeKube()
    kube.put(_md(_in_flight(weight=33), {"coalmine.dev/abort": ""}))
    _serving_canary(kube)
    clock = [NOW]
    assert reconcile(_deps(kube, clock), "ml", "iris") == WAIT_FOR_OBSERVATION
    assert seen[0].canary_weight == 33  # 1 of 3 ready pods
    assert seen[0].controls.abort
    assert kube.calls == [
        ("create", "Secret", "iris-receipt-keys"),  # the keys before any pod that mounts them
        ("apply", "Service", "iris-canary"),  # the mirror's target, never a client's
        ("apply", "Service", "iris"),  # traffic to stable first
        ("apply", "Deployment", "iris-stable"),
        ("apply", "Deployment", "iris-canary"),  # its pods stay until the router is seen at 0
        ("status", "ModelDeployment", "iris"),
        ("unannotate", "ModelDeployment", "coalmine.dev/abort"),
    ]
    assert kube.events == [
        ("Normal", "ReceiptKeysCreated",
         "created Secret iris-receipt-keys with receipt key k20260101t000000, active now"),
        ("Warning", "RollingBack", "rolling back v2: aborted by the abort annotation"),
    ]  # fmt: skip
    # Traffic is seen on stable; after the scale-down delay the canary goes to zero.
    kube.calls.clear()
    reconcile(_deps(kube, clock), "ml", "iris")
    assert seen[1].canary_weight == 0
    clock[0] = NOW + timedelta(seconds=10)
    kube.calls.clear()
    reconcile(_deps(kube, clock), "ml", "iris")
    assert kube.calls[:3] == [
        ("apply", "Deployment", "iris-stable"),
        ("scale", "Deployment", "iris-canary"),  # then the canary goes to zero
        ("apply", "Service", "iris-canary"),  # (both re-applied, unchanged)
    ]


def test_raising_the_weight_starts_pods_before_routing_to_them(seen):
    kube = FakeKube()
    kube.put(_md(_in_flight(weight=0)))
    _serving_canary(kube)
    kube.apply({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "iris", "namespace": "ml", "ownerReferences": OURS},
        "spec": {"selector": {"coalmine.dev/model-deployment": "iris",
                              "coalmine.dev/variant": "stable"}},
    })  # fmt: skip
    kube.calls.clear()
    reconcile(_deps(kube), "ml", "iris")
    assert seen[0].canary_weight == 0
    assert kube.calls[0] == ("create", "Secret", "iris-receipt-keys")
    assert [c[:3] for c in kube.calls[1:5]] == [
        ("apply", "Deployment", "iris-stable"),
        ("apply", "Deployment", "iris-canary"),
        ("apply", "Service", "iris-canary"),
        ("apply", "Service", "iris"),
    ]


def test_unchanged_status_is_not_written_again(seen):
    kube = FakeKube()
    kube.put(_md(ModelDeploymentStatus(phase=Phase.HEALTHY, stable=V2)))
    _serving_canary(kube)
    stable = kube.objects[ObjectRef("Deployment", "ml", "iris-stable")]
    stable["metadata"]["labels"]["coalmine.dev/revision"] = R2
    reconcile(_deps(kube), "ml", "iris")
    assert ("status", "ModelDeployment", "iris") in kube.calls  # conditions, generation
    kube.calls.clear()
    reconcile(_deps(kube), "ml", "iris")
    assert ("status", "ModelDeployment", "iris") not in kube.calls


def test_status_reports_the_stable_pods_for_the_scale_subresource(seen):
    """What ``kubectl scale`` and an HPA read: stable's replicas and the pods to average over."""
    kube = FakeKube()
    kube.put(_md(_in_flight(weight=33)))
    _serving_canary(kube)
    reconcile(_deps(kube), "ml", "iris")
    status = kube.objects[ObjectRef("ModelDeployment", "ml", "iris")]["status"]
    assert status["replicas"] == 2  # spec.runtime.replicas; the canary's pods come on top
    assert status["selector"] == "coalmine.dev/model-deployment=iris,coalmine.dev/variant=stable"


def test_a_deleted_object_is_left_to_the_garbage_collector(seen):
    kube = FakeKube()
    assert reconcile(_deps(kube), "ml", "iris") is None
    body = _md(None)
    body["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    kube.put(body)
    assert reconcile(_deps(kube), "ml", "iris") is None
    assert kube.calls == []
    assert seen == []


def test_a_deleted_object_loses_the_finalizer_an_older_operator_put_on(seen):
    kube = FakeKube()
    body = _md(None)
    body["metadata"] |= {
        "resourceVersion": "5",
        "deletionTimestamp": "2026-01-01T00:00:00Z",
        "finalizers": ["example.com/keep", "coalmine.dev/finalizer"],
    }
    kube.put(body)
    assert reconcile(_deps(kube), "ml", "iris") is None
    left = kube.get(ObjectRef("ModelDeployment", "ml", "iris"))
    assert left is not None and left["metadata"]["finalizers"] == ["example.com/keep"]
    assert reconcile(_deps(kube), "ml", "iris") is None
    assert kube.calls == [("patch", "ModelDeployment", "iris")], "once, then nothing to do"
    assert seen == []


def test_an_invalid_spec_is_reported_in_status(seen):
    kube = FakeKube()
    body = _md(None)
    body["spec"] = {**SPEC, "model": {**MODEL, "format": "pickle"}}
    kube.put(body)
    assert reconcile(_deps(kube), "ml", "iris") is None
    written = kube.get(ObjectRef("ModelDeployment", "ml", "iris"))
    assert written is not None
    (ready,) = written["status"]["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "InvalidSpec")


def test_a_spec_beyond_the_operator_policy_changes_no_pod(seen):
    # A canary in flight, then an edit asks for an image the operator does not allow and a
    # pickle it forbids: the tick stops before the keys and the engine, says why naming the
    # fields, and leaves the running pods alone.
    kube = FakeKube()
    _serving_canary(kube)
    body = _md(_in_flight(50))
    body["spec"] = {
        **SPEC,
        "model": {**MODEL, "format": "joblib", "uri": "file:///m.joblib"},
        "runtime": {"replicas": 2, "image": "evil.example/serving:1"},
    }
    kube.put(body)
    kube.calls.clear()

    assert reconcile(_deps(kube), "ml", "iris") is None
    assert reconcile(_deps(kube, [NOW + timedelta(seconds=5)]), "ml", "iris") is None

    assert seen == []
    assert kube.calls == [("status", "ModelDeployment", "iris")], "written once, nothing applied"
    status = kube.get(ObjectRef("ModelDeployment", "ml", "iris"))["status"]  # type: ignore[index]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert ready["message"].startswith("spec.model.format: joblib is refused")
    assert "; spec.runtime.image: evil.example/serving:1 is not" in ready["message"]
    assert status["canary"]["revision"] == R2, "the rollout state is kept for when it is fixed"


def test_a_tick_whose_read_went_stale_writes_no_status_no_event_and_keeps_the_control(
    monkeypatch: pytest.MonkeyPatch,
):
    """Another writer lands a status (here: RollingBack) between this tick's read and its
    write: the write is refused (409) instead of overwriting it, and the tick's Events and
    control removal go with it, for the next tick to decide again from a fresh read."""
    kube = FakeKube()
    body = _md(_in_flight(weight=33), {"coalmine.dev/abort": ""})
    body["metadata"]["resourceVersion"] = "7"
    kube.put(body)
    _serving_canary(kube)
    ref = ObjectRef("ModelDeployment", "ml", "iris")

    def racing(spec: Any, status: Any, obs: Observations, now: datetime) -> Any:
        newer = _in_flight(weight=33).model_copy(update={"phase": Phase.ROLLING_BACK})
        kube.objects[ref]["status"] = newer.to_manifest()
        kube.objects[ref]["metadata"]["resourceVersion"] = "8"
        return decide(spec, status, obs, now)

    monkeypatch.setattr(reconcile_module, "decide", racing)
    with pytest.raises(ConflictError):
        reconcile(_deps(kube), "ml", "iris")
    stored = kube.objects[ref]
    assert stored["status"]["phase"] == "RollingBack"  # the newer status stands
    assert [e for e in kube.events if e[1] == "RollingBack"] == []
    assert "coalmine.dev/abort" in stored["metadata"]["annotations"]
