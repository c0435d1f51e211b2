"""Children that are not ours, through whole ticks on the fake API: a foreign object of a
child's name is never written, the tick is held with ``ChildConflict`` and one Event, and the
guard every write goes through applies only what it has seen is ours (or absent, unforced)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from coalmine.k8s import ObjectRef
from coalmine.manifests import Manifest
from coalmine.ownership import ChildGuard, ForeignChildError
from coalmine.reconcile import Deps, reconcile
from coalmine.settings import OperatorSettings
from tests.coalmine.fakes import FakeKube, FakeProvider

NOW = datetime(2026, 12, 1, 3, 10, tzinfo=UTC)
MODEL = {"name": "iris", "version": "v1", "uri": "file:///m.onnx", "format": "onnx"}
MD = ObjectRef("ModelDeployment", "ml", "iris")
SERVICE = ObjectRef("Service", "ml", "iris")
STABLE = ObjectRef("Deployment", "ml", "iris-stable")


def _md() -> dict[str, Any]:
    return {
        "apiVersion": "coalmine.dev/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": "ml", "uid": "u1", "generation": 1},
        "spec": {"model": MODEL},
    }  # fmt: skip


def _service(owner_uid: str | None) -> Manifest:
    meta: Manifest = {"name": "iris", "namespace": "ml", "resourceVersion": "7"}
    if owner_uid is not None:
        meta["ownerReferences"] = [
            {"kind": "ModelDeployment", "name": "iris", "uid": owner_uid, "controller": True}
        ]
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"selector": {"app": "web"}}}  # fmt: skip


def _deps(kube: FakeKube, clock: list[datetime]) -> Deps:
    return Deps(
        kube=kube,
        providers=lambda address, timeout: FakeProvider(),
        settings=OperatorSettings(),
        clock=lambda: clock[0],
    )


def _conflict(kube: FakeKube) -> dict[str, Any]:
    conditions = kube.objects[MD]["status"]["conditions"]
    (found,) = [c for c in conditions if c["type"] == "ChildConflict"]
    return dict(found)


def test_a_foreign_service_of_the_md_name_is_left_alone_and_holds_the_rollout() -> None:
    kube = FakeKube()
    kube.put(_md())
    foreign = _service(owner_uid=None)
    kube.put(foreign)
    clock = [NOW]
    for _ in range(3):
        reconcile(_deps(kube, clock), "ml", "iris")
        clock[0] += timedelta(seconds=5)

    assert kube.get(SERVICE) == foreign
    assert not [c for c in kube.calls if c[1] in ("Deployment", "Service", "HTTPRoute")]
    condition = _conflict(kube)
    assert (condition["status"], condition["reason"]) == ("True", "ChildNotOwned")
    assert condition["message"].startswith("Service iris (controlled by no controller) exists")
    assert kube.objects[MD]["status"]["message"] == condition["message"]
    warnings = [e for e in kube.events if e[:2] == ("Warning", "ChildNotOwned")]
    assert len(warnings) == 1  # once, not every tick

    del kube.objects[SERVICE]  # the person removes it: the rollout starts, the condition clears
    reconcile(_deps(kube, clock), "ml", "iris")
    cleared = _conflict(kube)
    assert (cleared["status"], cleared["reason"]) == ("False", "ChildrenOwned")
    assert ("apply", "Deployment", "iris-stable") in kube.calls
    assert ("apply", "Service", "iris") in kube.calls


def test_a_child_left_by_an_earlier_md_of_the_same_name_is_not_ours() -> None:
    kube = FakeKube()
    kube.put(_md())
    kube.put(_service(owner_uid="u0"))  # the old ModelDeployment's, not yet collected
    reconcile(_deps(kube, [NOW]), "ml", "iris")
    message = _conflict(kube)["message"]
    assert "ModelDeployment iris (uid u0), an earlier ModelDeployment of this name" in message
    assert not [c for c in kube.calls if c[0] == "apply"]


def test_a_md_that_never_had_a_conflict_gets_no_condition() -> None:
    kube = FakeKube()
    kube.put(_md())
    reconcile(_deps(kube, [NOW]), "ml", "iris")
    types = [c["type"] for c in kube.objects[MD]["status"]["conditions"]]
    assert "ChildConflict" not in types


class _RecordingKube(FakeKube):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[ObjectRef] = []
        self.forced: list[tuple[str, bool]] = []

    def get(self, ref: ObjectRef) -> Manifest | None:
        self.reads.append(ref)
        return super().get(ref)

    def apply(self, manifest: Manifest, *, force: bool = True) -> Manifest:
        self.forced.append((manifest["metadata"]["name"], force))
        return super().apply(manifest, force=force)


def test_the_guard_forces_only_what_it_saw_is_ours_and_creates_the_rest_unforced() -> None:
    kube = _RecordingKube()
    ours = _service(owner_uid="u1")
    ours["metadata"]["uid"] = "s1"
    kube.put(ours)
    guard = ChildGuard(kube, "u1")
    guard.get(SERVICE)
    guard.get(SERVICE)
    assert kube.reads == [SERVICE]  # read once per tick

    guard.apply(_service(owner_uid="u1"))
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "iris-stable", "namespace": "ml"}}  # fmt: skip
    guard.apply(deployment)
    assert kube.forced == [("iris", True), ("iris-stable", False)]
    # Pinned to the uid read: a Service recreated by someone else since is refused, not taken.
    assert kube.objects[SERVICE]["metadata"]["uid"] == "s1"
    assert "uid" not in kube.objects[ObjectRef("Deployment", "ml", "iris-stable")]["metadata"]


def test_the_guard_refuses_to_write_or_scale_a_foreign_object() -> None:
    kube = _RecordingKube()
    kube.put(_service(owner_uid=None))
    kube.put({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 3},
              "metadata": {"name": "iris-stable", "namespace": "ml"}})  # fmt: skip
    guard = ChildGuard(kube, "u1")
    with pytest.raises(ForeignChildError, match="Service iris"):
        guard.apply(_service(owner_uid="u1"))
    with pytest.raises(ForeignChildError, match="Deployment iris-stable"):
        guard.scale(STABLE, 0)
    assert kube.forced == [] and not [c for c in kube.calls if c[0] == "scale"]
