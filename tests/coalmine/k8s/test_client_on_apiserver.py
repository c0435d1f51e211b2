"""``coalmine.k8s.client`` on a real API server: every operation the operator and the plugin
use, the field manager each one writes under, and the error types of real answers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from coalmine.k8s import (
    ApiError,
    ConflictError,
    ForbiddenError,
    KindNotServedError,
    NotFoundError,
    ObjectRef,
)
from coalmine.k8s import protocol as k8s_protocol
from coalmine.k8s.client import KubernetesApi, connect

pytestmark = pytest.mark.integration

# The control_plane fixture comes from the dev-cluster pytest plugin (tests/conftest.py); it is
# not annotated here so this file does not depend on where that package lives.


@pytest.fixture
def namespace(control_plane: Any) -> str:
    ns = f"k8s-{uuid.uuid4().hex[:8]}"
    control_plane.kubeconfig_for_service_account(ns, "nobody")  # creates the namespace
    return ns


@pytest.fixture
def api(control_plane: Any) -> KubernetesApi:
    return connect(str(control_plane.kubeconfig))


def deployment(namespace: str) -> dict[str, Any]:
    labels = {"app": "probe"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "example.invalid/probe:1"}]},
            },
        },
    }


def test_apply_scale_and_patches_under_each_field_manager(
    api: KubernetesApi, control_plane: Any, namespace: str
) -> None:
    ref = ObjectRef("Deployment", namespace, "probe")
    api.apply(deployment(namespace))
    api.scale(ref, 2)
    person = connect(str(control_plane.kubeconfig), field_manager="kubectl-coalmine")
    person.merge_patch(ref, {"metadata": {"annotations": {"a": "1", "b": "2"}}})
    api.remove_annotations(ref, ["a"])

    found = api.read(ref)
    assert found["spec"]["replicas"] == 2
    annotations = found["metadata"]["annotations"]  # the Deployment controller adds its own
    assert "a" not in annotations and annotations["b"] == "2"
    managers = {(f["manager"], f["operation"]) for f in found["metadata"]["managedFields"]}
    assert {("coalmine-operator", "Apply"), ("kubectl-coalmine", "Update")} <= managers


def test_a_missing_object_is_none_or_not_found(api: KubernetesApi, namespace: str) -> None:
    ref = ObjectRef("Deployment", namespace, "absent")

    assert api.get(ref) is None
    with pytest.raises(NotFoundError) as raised:
        api.read(ref)
    assert type(raised.value) is NotFoundError


def test_a_kind_the_server_does_not_serve_is_told_apart(
    api: KubernetesApi, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A group the server serves but not the resource (a Status says so), and a group nobody
    # serves, as when the CRD is not installed (the router answers in plain text).
    monkeypatch.setitem(k8s_protocol._KINDS, "Widget", ("/apis/apps/v1", "widgets"))
    monkeypatch.setitem(k8s_protocol._KINDS, "Gadget", ("/apis/example.invalid/v1", "gadgets"))
    for ref in (ObjectRef("Widget", namespace, "w"), ObjectRef("Gadget", namespace, "g")):
        with pytest.raises(KindNotServedError):
            api.read(ref)
        assert api.get(ref) is None  # the operator treats it as absent, as before


def test_posted_events_are_listed_for_their_object(api: KubernetesApi, namespace: str) -> None:
    created = api.apply(deployment(namespace))
    involved = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "probe",
        "namespace": namespace,
        "uid": created["metadata"]["uid"],
    }
    api.post_event(involved, "Normal", "Probed", "hello")

    events = api.list_events(ObjectRef("Deployment", namespace, "probe"))
    assert [(e["reason"], e["message"]) for e in events] == [("Probed", "hello")]
    assert events[0]["source"]["component"] == "coalmine-operator"
    assert api.list_events(ObjectRef("Deployment", namespace, "other")) == []


def test_create_never_overwrites_and_a_versioned_patch_never_lands_on_a_newer_object(
    api: KubernetesApi, namespace: str
) -> None:
    ref = ObjectRef("Secret", namespace, "keys")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "keys", "namespace": namespace},
        "data": {"k": "b25l"},
    }
    read = api.create(secret)
    with pytest.raises(ConflictError):
        api.create({**secret, "data": {"k": "dHdv"}})
    api.merge_patch(ref, {"metadata": {"labels": {"someone": "edited"}}})  # moves the version on

    stale = {"metadata": {"resourceVersion": read["metadata"]["resourceVersion"]}}
    with pytest.raises(ConflictError):
        api.merge_patch(ref, {**stale, "data": {"k": "dHdv"}})
    assert api.read(ref)["data"] == {"k": "b25l"}
    fresh = {"metadata": {"resourceVersion": api.read(ref)["metadata"]["resourceVersion"]}}
    assert api.merge_patch(ref, {**fresh, "data": {"k": "dHdv"}})["data"] == {"k": "dHdv"}


def test_a_person_without_rbac_gets_forbidden_and_the_context_namespace(
    control_plane: Any, namespace: str
) -> None:
    nobody = connect(str(control_plane.kubeconfig_for_service_account(namespace, "nobody")))

    assert nobody.namespace == namespace
    with pytest.raises(ForbiddenError) as raised:
        nobody.read(ObjectRef("Deployment", namespace, "probe"))
    assert raised.value.status == 403
    assert "cannot get resource" in raised.value.message


def _person_service(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }  # fmt: skip


def _our_service(namespace: str, name: str, owner_uid: str) -> dict[str, Any]:
    # The owner is a real object (see _an_owner): the control plane's garbage collector deletes
    # a dependent whose owner does not exist, which raced this test once the CRD was installed.
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
             "uid": owner_uid, "controller": True}  # fmt: skip
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "ownerReferences": [owner]},
        "spec": {"selector": {"coalmine.dev/model-deployment": name},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }  # fmt: skip


def _an_owner(control_plane: Any, namespace: str) -> str:
    """The uid of a real object to own the test's children (a ConfigMap stands in for the
    ModelDeployment: the guard compares uids only)."""
    with control_plane.api_client() as admin:
        created = admin.post(
            f"/api/v1/namespaces/{namespace}/configmaps",
            json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}},
        )
        created.raise_for_status()
        return str(created.json()["metadata"]["uid"])


def test_the_child_guard_takes_nothing_created_or_recreated_since_it_read(
    api: KubernetesApi, control_plane: Any, namespace: str
) -> None:
    """The two races of a tick: someone creates a child's name after the guard saw it absent,
    or deletes our child and creates theirs after the guard saw ours. Either way the API
    server refuses the operator's apply, and the person's object stays as they made it."""
    from coalmine.ownership import ChildGuard  # the guard under test, on the real client

    person = connect(str(control_plane.kubeconfig), field_manager="a-person")
    uid = _an_owner(control_plane, namespace)
    ref = ObjectRef("Service", namespace, "iris")
    guard = ChildGuard(api, uid)
    assert guard.get(ref) is None
    theirs = person.create(_person_service(namespace, "iris"))  # their port's targetPort
    with pytest.raises(ConflictError, match="conflict"):
        guard.apply(_our_service(namespace, "iris", uid))
    assert person.read(ref) == theirs

    person_ref = ObjectRef("Service", namespace, "iris-2")
    first = ChildGuard(api, uid)
    assert first.get(person_ref) is None
    ours = first.apply(_our_service(namespace, "iris-2", uid))  # created: it was absent
    assert ours["metadata"]["ownerReferences"][0]["uid"] == uid
    later = ChildGuard(api, uid)
    assert later.get(person_ref) is not None  # the next tick reads it: ours
    with control_plane.api_client() as admin:  # the person deletes ours (the product never deletes)
        admin.delete(person_ref.path()).raise_for_status()
    replaced = person.create(_person_service(namespace, "iris-2"))
    with pytest.raises(ApiError, match=r"metadata\.uid.*field is immutable"):  # 422
        later.apply(_our_service(namespace, "iris-2", uid))
    assert person.read(person_ref) == replaced
