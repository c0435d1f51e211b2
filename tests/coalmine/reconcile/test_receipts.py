"""The receipt-key Secret through whole ticks, on the fake API: created before any pod,
read-then-written (never replaced blind), rotated on request, and a Secret that is not ours
left alone with the rollout held."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from coalmine.api import ModelDeployment
from coalmine.k8s import ConflictError, ObjectRef
from coalmine.manifests.receiptkeys import keys_in
from coalmine.receipts import ensure_receipt_keys
from coalmine.reconcile import Deps, reconcile
from coalmine.settings import OperatorSettings
from coalmine.subject import Subject
from tests.coalmine.fakes import FakeKube, FakeProvider

NOW = datetime(2026, 12, 1, 3, 10, tzinfo=UTC)
MODEL = {"name": "iris", "version": "v1", "uri": "file:///m.onnx", "format": "onnx"}
SECRET = ObjectRef("Secret", "ml", "iris-receipt-keys")
MD = ObjectRef("ModelDeployment", "ml", "iris")


def _md(annotations: dict[str, str] | None = None, horizon: str = "48h") -> dict[str, Any]:
    return {
        "apiVersion": "coalmine.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": "ml", "uid": "u1", "generation": 1,
                     "annotations": annotations or {}},
        "spec": {"model": MODEL, "feedback": {"horizon": horizon}},
    }  # fmt: skip


def _deps(kube: FakeKube, clock: list[datetime]) -> Deps:
    return Deps(
        kube=kube,
        providers=lambda address, timeout: FakeProvider(),
        settings=OperatorSettings(),
        clock=lambda: clock[0],
    )


def _keys(kube: FakeKube) -> list[dict[str, str]]:
    secret = kube.objects[SECRET]
    keys: list[dict[str, str]] = json.loads(base64.b64decode(secret["data"]["keys.json"]))["keys"]
    return keys


def _condition(kube: FakeKube) -> dict[str, Any]:
    conditions = kube.objects[MD]["status"]["conditions"]
    (found,) = [c for c in conditions if c["type"] == "ReceiptKeys"]
    return dict(found)


def test_the_first_tick_creates_the_secret_before_the_deployment_and_reports_it():
    kube = FakeKube()
    kube.put(_md())
    reconcile(_deps(kube, [NOW]), "ml", "iris")

    kinds = [(op, kind) for op, kind, _ in kube.calls]
    assert kinds.index(("create", "Secret")) < kinds.index(("apply", "Deployment"))
    (key,) = _keys(kube)
    assert key["activeFrom"] == "2026-12-01T03:10:00Z"
    assert len(base64.b64decode(key["secret"])) == 32
    condition = _condition(kube)
    assert (condition["status"], condition["reason"]) == ("True", "KeysReady")
    assert condition["message"] == (
        "Secret iris-receipt-keys holds 1 key; signing with k20261201t031000"
    )
    assert ("Normal", "ReceiptKeysCreated") in [e[:2] for e in kube.events]


def test_later_ticks_read_the_keys_and_leave_them_as_they_are():
    kube = FakeKube()
    kube.put(_md())
    clock = [NOW]
    reconcile(_deps(kube, clock), "ml", "iris")
    stored = kube.get(SECRET)
    for minutes in (1, 60, 60 * 24 * 29):
        clock[0] = NOW + timedelta(minutes=minutes)
        kube.calls.clear()
        reconcile(_deps(kube, clock), "ml", "iris")
        assert not [c for c in kube.calls if c[1] == "Secret"], kube.calls
    assert kube.get(SECRET) == stored


def test_two_ticks_never_make_different_keys_for_a_new_model_deployment():
    # The random bytes differ every call: only reading the stored Secret keeps the keys.
    kube = FakeKube()
    kube.put(_md())
    reconcile(_deps(kube, [NOW]), "ml", "iris")
    first = _keys(kube)
    reconcile(_deps(kube, [NOW + timedelta(seconds=5)]), "ml", "iris")
    assert _keys(kube) == first


def test_a_rotation_request_adds_a_waiting_key_then_the_annotation_goes():
    kube = FakeKube()
    kube.put(_md())
    reconcile(_deps(kube, [NOW]), "ml", "iris")
    kube.objects[MD]["metadata"]["annotations"]["coalmine.dev/rotate-keys"] = "2026-12-01T04:00:00Z"
    kube.calls.clear()
    later = NOW + timedelta(hours=1)
    requeue = reconcile(_deps(kube, [later]), "ml", "iris")

    old, new = _keys(kube)
    assert new["activeFrom"] == "2026-12-01T04:12:00Z"  # the 120 s activation delay
    assert new["secret"] != old["secret"]
    assert kube.calls.index(("patch", "Secret", "iris-receipt-keys")) < kube.calls.index(
        ("unannotate", "ModelDeployment", "coalmine.dev/rotate-keys")
    )
    assert "coalmine.dev/rotate-keys" not in kube.objects[MD]["metadata"]["annotations"]
    added = [e for e in kube.events if e[1] == "ReceiptKeyAdded"]
    assert len(added) == 1 and "requested by coalmine.dev/rotate-keys" in added[0][2]
    assert _condition(kube)["message"].endswith(
        "signing with k20261201t031000, k20261201t041200 from 2026-12-01T04:12:00Z"
    )
    assert requeue is not None and requeue <= 300


def test_the_old_key_goes_once_its_successor_signed_past_the_horizon():
    kube = FakeKube()
    kube.put(_md(horizon="1h"))
    reconcile(_deps(kube, [NOW]), "ml", "iris")
    rotation = NOW + timedelta(days=30)
    reconcile(_deps(kube, [rotation]), "ml", "iris")
    assert len(_keys(kube)) == 2
    successor_active = rotation + timedelta(seconds=120)
    reconcile(_deps(kube, [successor_active + timedelta(minutes=69)]), "ml", "iris")
    assert len(_keys(kube)) == 2  # 1h horizon + 10 min margin not yet over
    reconcile(_deps(kube, [successor_active + timedelta(minutes=70)]), "ml", "iris")
    (left,) = _keys(kube)
    assert left["activeFrom"] == "2026-12-31T03:12:00Z"
    assert [e[1] for e in kube.events].count("ReceiptKeyRetired") == 1


def test_a_secret_of_that_name_not_owned_by_us_is_left_alone_and_holds_the_rollout():
    kube = FakeKube()
    kube.put(_md())
    foreign = {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "iris-receipt-keys", "namespace": "ml", "resourceVersion": "7"},
        "data": {"keys.json": base64.b64encode(b"someone else's").decode()},
    }  # fmt: skip
    kube.put(foreign)
    clock = [NOW]
    for _ in range(3):
        reconcile(_deps(kube, clock), "ml", "iris")
        clock[0] += timedelta(seconds=5)

    assert kube.get(SECRET) == foreign
    assert not [c for c in kube.calls if c[1] in ("Secret", "Deployment", "Service")]
    condition = _condition(kube)
    assert (condition["status"], condition["reason"]) == ("False", "ReceiptKeysConflict")
    assert "not owned by this ModelDeployment" in condition["message"]
    warnings = [e for e in kube.events if e[:2] == ("Warning", "ReceiptKeysConflict")]
    assert len(warnings) == 1  # once, not every tick
    assert kube.objects[MD]["status"]["message"] == condition["message"]

    del kube.objects[SECRET]  # the person removes it: the rollout starts
    reconcile(_deps(kube, clock), "ml", "iris")
    assert _condition(kube)["status"] == "True"
    assert ("apply", "Deployment", "iris-stable") in kube.calls


def test_our_secret_with_a_broken_file_is_not_overwritten():
    kube = FakeKube()
    kube.put(_md())
    reconcile(_deps(kube, [NOW]), "ml", "iris")
    kube.objects[SECRET]["data"]["keys.json"] = base64.b64encode(b"{}").decode()
    broken = kube.get(SECRET)
    kube.calls.clear()
    reconcile(_deps(kube, [NOW + timedelta(seconds=5)]), "ml", "iris")
    assert kube.get(SECRET) == broken
    assert not [c for c in kube.calls if c[1] in ("Secret", "Deployment")]
    condition = _condition(kube)
    assert (condition["status"], condition["reason"]) == ("False", "ReceiptKeysInvalid")
    assert "delete it to get new keys" in condition["message"]


def test_a_secret_changed_since_it_was_read_is_not_overwritten(monkeypatch: pytest.MonkeyPatch):
    kube = FakeKube()
    kube.put(_md())
    reconcile(_deps(kube, [NOW]), "ml", "iris")
    stale = kube.get(SECRET)
    assert stale is not None
    kube.merge_patch(SECRET, {"metadata": {"labels": {"someone": "edited"}}})
    current = kube.get(SECRET)
    monkeypatch.setattr(kube, "get", lambda ref: stale if ref == SECRET else current)
    md = ModelDeployment.from_manifest(_md({"coalmine.dev/rotate-keys": ""}))
    subject = Subject.build(MD, "u1", md.spec)
    with pytest.raises(ConflictError):
        ensure_receipt_keys(kube, subject, md, OperatorSettings(), NOW + timedelta(hours=1))
    assert kube.objects[SECRET] == current  # the rotation is retried from a fresh read
    assert len(keys_in(kube.objects[SECRET])) == 1
