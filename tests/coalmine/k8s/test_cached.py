"""``CachedKubeApi``'s rules, with a fake inner client and stores filled by hand: when a read may
come from the watch-backed store and when it must go to the API server."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from coalmine.k8s import ConflictError, ObjectRef
from coalmine.k8s.cached import CachedKubeApi, copied, holds
from coalmine.k8s.watchcache import UNKNOWN, Store
from tests.coalmine.fakes import FakeKube


class CountingKube(FakeKube):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, ref: ObjectRef) -> Any:
        self.reads += 1
        return super().get(ref)

    def apply(self, manifest: Any, *, force: bool = True) -> Any:
        """As the API server answers: the object, with a resourceVersion moved on."""
        answer = super().apply(manifest, force=force)
        answer["metadata"] = {**answer["metadata"], "resourceVersion": str(8 + len(self.calls))}
        self.objects[ObjectRef.of(manifest)] = answer
        return copy.deepcopy(answer)


REF = ObjectRef("Deployment", "ml", "iris-stable")


def deployment(version: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": REF.name, "namespace": "ml", "resourceVersion": version,
                     "managedFields": [{"manager": "x"}]},
        "spec": {"replicas": replicas},
    }  # fmt: skip


def cached(synced: bool = True) -> tuple[CachedKubeApi, CountingKube, Store]:
    inner, store = CountingKube(), Store("Deployment", "ml")
    inner.put(deployment("7", replicas=3))
    if synced:
        store.replace([deployment("5")])
    return CachedKubeApi(inner, [store]), inner, store


def test_copied_documents_share_no_dict_or_list_with_the_original():
    original = {"spec": {"containers": [{"args": ["a"], "env": [{"name": "X"}]}]}, "n": 1}
    duplicate = copied(original)
    assert duplicate == original
    duplicate["spec"]["containers"][0]["args"].append("b")
    duplicate["spec"]["containers"][0]["env"][0]["name"] = "Y"
    assert original == {"spec": {"containers": [{"args": ["a"], "env": [{"name": "X"}]}]}, "n": 1}


def test_a_synced_store_answers_without_the_api_server_and_hands_out_copies():
    api, inner, _ = cached()
    first = api.get(REF)
    assert first is not None and first["metadata"]["resourceVersion"] == "5"
    assert "managedFields" not in first["metadata"]
    first["spec"]["replicas"] = 99
    assert api.get(REF)["spec"]["replicas"] == 1  # type: ignore[index]
    assert api.get(ObjectRef("Deployment", "ml", "absent")) is None, "synced: absent is absent"
    assert inner.reads == 0


def test_before_the_first_list_reads_go_to_the_api_server():
    api, _, store = cached(synced=False)
    assert store.get(REF) is UNKNOWN
    assert api.get(REF)["metadata"]["resourceVersion"] == "7"  # type: ignore[index]


def test_a_lost_watch_sends_reads_to_the_api_server_until_it_lists_again():
    api, _, store = cached()
    store.lost()
    assert api.get(REF)["metadata"]["resourceVersion"] == "7"  # type: ignore[index]


def test_kinds_without_a_store_are_read_from_the_api_server():
    api, inner, _ = cached()
    inner.put({"kind": "Secret", "metadata": {"name": "keys", "namespace": "ml"}})
    assert api.get(ObjectRef("Secret", "ml", "keys")) is not None


def test_a_write_answer_replaces_the_cached_object_and_an_older_event_does_not_undo_it():
    api, _, store = cached()
    api.apply(deployment("9", replicas=2))
    assert api.get(REF)["spec"]["replicas"] == 2  # type: ignore[index]
    store.update(deployment("8", replicas=1))  # the watch's event of an earlier change
    assert api.get(REF)["metadata"]["resourceVersion"] == "9"  # type: ignore[index]


def test_a_write_without_the_object_in_its_answer_makes_the_next_read_go_to_the_server_once():
    api, inner, _ = cached()
    api.scale(REF, 3)
    assert api.get(REF)["spec"]["replicas"] == 3  # type: ignore[index]
    assert api.get(REF)["spec"]["replicas"] == 3, "kept from that read"  # type: ignore[index]
    assert inner.reads == 1


def test_an_event_kopf_saw_first_is_not_answered_from_an_older_store():
    api, inner, store = cached()
    api.saw(deployment("7"))
    assert api.get(REF)["metadata"]["resourceVersion"] == "7"  # type: ignore[index]
    store.update(deployment("11"))
    api.saw(deployment("10"))
    assert api.get(REF)["metadata"]["resourceVersion"] == "11", "the store is newer: no read"  # type: ignore[index]
    assert inner.reads == 1, "only the read the stale store could not answer"


def applies(inner: CountingKube) -> int:
    return sum(1 for call in inner.calls if call[0] == "apply")


def wanted(replicas: int = 2, **extra: Any) -> dict[str, Any]:
    manifest = deployment("", replicas=replicas)
    del manifest["metadata"]["resourceVersion"], manifest["metadata"]["managedFields"]
    manifest["spec"].update(extra)
    return manifest


def test_an_apply_that_would_change_nothing_is_not_sent_again():
    api, inner, _ = cached()
    first = api.apply(wanted())
    assert applies(inner) == 1, "the store's object has replicas 1: sent"
    answer = api.apply(wanted())
    assert applies(inner) == 1, "the same manifest, and the object holds it: not sent"
    assert answer == first, "the answer is the object as the last write left it"


def test_someone_elses_change_to_a_field_of_ours_is_applied_back():
    api, inner, store = cached()
    api.apply(wanted())
    store.update(deployment("12", replicas=5))  # `kubectl scale` by hand, through the watch
    api.apply(wanted())
    assert applies(inner) == 2


def test_what_was_applied_is_remembered_as_sent_not_as_the_caller_changes_it_later():
    api, inner, _ = cached()
    manifest = wanted()
    api.apply(manifest)
    manifest["spec"]["replicas"] = 3  # the caller's dict, changed after the apply
    api.apply(wanted(replicas=3))
    assert applies(inner) == 2, "replicas 3 was never sent: it is sent now"


def test_a_version_found_to_hold_the_manifest_is_trusted_until_the_object_changes():
    api, inner, store = cached()
    api.apply(wanted())
    for _ in range(3):  # ticks of a canary: the same children, the same versions
        api.apply(wanted())
    assert applies(inner) == 1
    kept = store.get(REF)
    assert isinstance(kept, dict)
    store.update({**kept, "metadata": {**kept["metadata"], "resourceVersion": "40"},
                  "spec": {"replicas": 7}})  # fmt: skip
    api.apply(wanted())
    assert applies(inner) == 2, "a new version is checked again, and this one differs"


def test_a_manifest_that_drops_a_field_is_sent_though_the_object_holds_the_rest():
    api, inner, _ = cached()
    api.apply(wanted(paused=True))
    api.apply(wanted())  # only the server can remove `paused`, which was ours
    assert applies(inner) == 2


def test_an_apply_is_sent_when_the_store_cannot_vouch_for_the_object():
    api, inner, store = cached()
    api.apply(wanted())
    api.scale(REF, 2)  # a write whose answer is not the object: the store may be behind
    api.apply(wanted())
    assert applies(inner) == 2, "after a write the store has not seen"
    store.lost()
    api.apply(wanted())
    assert applies(inner) == 3, "a lost watch"


def test_holds_ignores_server_defaults_and_nothing_else():
    desired = {"spec": {"ports": [{"port": 80, "targetPort": 8080}], "cpu": "0.5"}}
    defaulted = {"spec": {"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
                          "cpu": "0.5", "type": "ClusterIP"}}  # fmt: skip
    assert holds(defaulted, desired)
    assert holds(defaulted, {**desired, "readOnly": False}), "a zero the server leaves out"
    assert not holds(defaulted, {**desired, "readOnly": True})
    assert not holds({"spec": {**defaulted["spec"], "cpu": "500m"}}, desired), "rewritten"
    two_ports = [*defaulted["spec"]["ports"], {"port": 81}]
    assert not holds({"spec": {**defaulted["spec"], "ports": two_ports}}, desired)
    assert not holds({"spec": {"ports": []}}, desired)
    assert not holds({"spec": {"ports": "80", "cpu": "0.5"}}, desired)


def test_after_a_status_write_the_store_answers_once_its_watch_has_brought_the_write():
    api, inner, store = cached()
    written = api.apply_status(REF, "apps/v1", {"phase": "x"}, resource_version="7")
    assert written == "8"
    assert api.get(REF)["metadata"]["resourceVersion"] == "8", "the store (5) is behind"  # type: ignore[index]
    store.update(deployment("8"))  # the watch's MODIFIED event of our write
    api.apply_status(REF, "apps/v1", {"phase": "y"}, resource_version="8")
    store.update(deployment("9"))
    assert api.get(REF)["metadata"]["resourceVersion"] == "9"  # type: ignore[index]
    assert inner.reads == 1, "only the read before the watch had caught up"


def test_a_refused_status_write_sends_the_next_read_to_the_server():
    api, inner, _ = cached()
    with pytest.raises(ConflictError):
        api.apply_status(REF, "apps/v1", {"phase": "x"}, resource_version="6")
    assert api.get(REF)["metadata"]["resourceVersion"] == "7"  # type: ignore[index]
    assert inner.reads == 1


# --- Secrets: get by name only (no watch), remembered for a minute when a ModelDeployment's ---

SECRET = ObjectRef("Secret", "ml", "iris-receipt-keys")
MD = ObjectRef("ModelDeployment", "ml", "iris")


def model_deployment(uid: str) -> dict[str, Any]:
    return {
        "apiVersion": "coalmine.dev/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": "ml", "uid": uid, "resourceVersion": "3"},
    }  # fmt: skip


def secret(owner_uid: str | None = "uid-1", value: str = "a") -> dict[str, Any]:
    owners = [{"apiVersion": "coalmine.dev/v1alpha1", "kind": "ModelDeployment",
               "name": "iris", "uid": owner_uid, "controller": True}]  # fmt: skip
    return {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": SECRET.name, "namespace": "ml", "resourceVersion": "4",
                     "ownerReferences": owners if owner_uid else []},
        "data": {"keys.json": value},
    }  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


MDS = Store("ModelDeployment", "ml")


def with_secret(stored: dict[str, Any]) -> tuple[CachedKubeApi, CountingKube, Clock]:
    inner, clock = CountingKube(), Clock()
    inner.put(stored)
    MDS.replace([model_deployment("uid-1")])
    return CachedKubeApi(inner, [MDS], clock=clock), inner, clock


def test_a_model_deployments_secret_is_read_once_a_minute_not_every_tick():
    api, inner, clock = with_secret(secret())
    for _ in range(6):  # a canary ticking every 10 s
        assert api.get(SECRET)["data"] == {"keys.json": "a"}  # type: ignore[index]
        clock.now += 9.9
    assert inner.reads == 1
    clock.now += 1  # 60.4 s after the read
    api.get(SECRET)
    assert inner.reads == 2


def test_a_remembered_secret_is_handed_out_as_a_copy():
    api, _, _ = with_secret(secret())
    api.get(SECRET)["data"]["keys.json"] = "changed by a caller"  # type: ignore[index]
    assert api.get(SECRET)["data"] == {"keys.json": "a"}  # type: ignore[index]


def test_our_writes_answer_is_the_next_read_and_a_failed_write_forgets():
    api, inner, _ = with_secret(secret())
    api.get(SECRET)
    patched = api.merge_patch(SECRET, {"metadata": {"resourceVersion": "4"}, "data": {"m": "1"}})
    assert api.get(SECRET) == patched and inner.reads == 1
    with pytest.raises(ConflictError):  # someone else's write came between: 409
        api.merge_patch(SECRET, {"metadata": {"resourceVersion": "4"}, "data": {"m": "2"}})
    api.get(SECRET)
    assert inner.reads == 2, "after a 409 the next read is the server's"


def test_a_secret_no_model_deployment_controls_is_never_remembered():
    api, inner, _ = with_secret(secret(owner_uid=None))  # a person's: the tick is blocked on it
    api.get(SECRET)
    api.get(SECRET)
    assert inner.reads == 2


def test_a_model_deployment_made_again_under_the_same_name_is_not_shown_the_old_secret():
    api, inner, _ = with_secret(secret(owner_uid="uid-1"))
    api.get(SECRET)
    MDS.replace([model_deployment("uid-2")])  # deleted and applied again
    api.get(SECRET)
    assert inner.reads == 2


def test_an_absent_secret_is_read_again_and_a_created_one_is_remembered():
    api, inner, _ = with_secret(secret())
    inner.objects.pop(SECRET)
    assert api.get(SECRET) is None and api.get(SECRET) is None
    assert inner.reads == 2
    created = api.create(secret(value="b"))
    assert api.get(SECRET) == created and inner.reads == 2


def test_what_is_kept_of_objects_that_are_gone_is_dropped_and_the_rest_kept():
    """A deleted ModelDeployment's children and Secret leave nothing behind after two prunings
    (a minute apart); a live object keeps its applied digest, so it is not applied again."""
    inner, store, clock = CountingKube(), Store("Deployment", "ml"), Clock()
    api = CachedKubeApi(inner, [store, MDS], clock=clock)
    MDS.replace([model_deployment("uid-1")])
    store.replace([])
    live, gone = wanted(), wanted()
    gone["metadata"] = {**gone["metadata"], "name": "old-stable"}
    for manifest in (live, gone):
        store.update(api.apply(manifest))
    api.saw({**gone, "metadata": {**gone["metadata"], "resourceVersion": "99"}})
    inner.put(secret())
    api.get(SECRET)
    gone_ref = ObjectRef.of(gone)
    # Its owner deleted: the garbage collector took it, the watch said so.
    store.update(store.get(gone_ref), deleted=True)  # type: ignore[arg-type]
    for _ in range(2):
        clock.now += 61
        api.get(MD)
    assert gone_ref not in api._applied and gone_ref not in api._seen
    assert api._secrets == {}
    calls = len(inner.calls)
    api.apply(live)
    assert len(inner.calls) == calls, "a live object's digest was forgotten"
