"""Objects that are not ours, on a real API server with the operator under its own RBAC and a
real garbage collector: a Service and a Deployment a person made under the names a
ModelDeployment's children would have are never written (spec, ownerReferences and
managedFields as they were), the ModelDeployment says so with ``ChildConflict`` and one Event,
and deleting the ModelDeployment leaves them alive. And replicas belong to whoever scales the
ModelDeployment (a person, an HPA), not to the operator."""

from __future__ import annotations

import time
from typing import Any

import pytest

from e2e.devcluster.sandbox import MD_PATH, Sandbox, wait_for
from e2e.devcluster.specs import spec
from e2e.devcluster.tinymodels import ModelArtifacts

pytestmark = pytest.mark.integration


def _foreign_service() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "iris", "labels": {"app": "web"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }  # fmt: skip


def _foreign_deployment() -> dict[str, Any]:
    labels = {"app": "web"}
    container = {"name": "web", "image": "registry.example/web:1"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "iris-stable", "labels": labels},
        "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
    }  # fmt: skip


def _read(h: Sandbox, path: str) -> dict[str, Any] | None:
    response = h.api.get(path)
    return response.json() if response.status_code == 200 else None


def _conflict(status: dict[str, Any]) -> dict[str, Any]:
    found = [c for c in status.get("conditions", []) if c["type"] == "ChildConflict"]
    return found[0] if found else {}


def _untouched(before: dict[str, Any], after: dict[str, Any] | None) -> None:
    assert after is not None, f"{before['metadata']['name']} was deleted"
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"] == before["spec"]
    assert after["metadata"].get("ownerReferences") is None
    assert after["metadata"]["managedFields"] == before["metadata"]["managedFields"]
    managers = {field["manager"] for field in after["metadata"]["managedFields"]}
    assert "coalmine-operator" not in managers, managers


def test_foreign_objects_with_child_names_are_left_alone_and_outlive_the_md(
    harness: Sandbox, models: ModelArtifacts
) -> None:
    h = harness
    service_path = f"/api/v1/namespaces/{h.ns}/services/iris"
    deployment_path = f"/apis/apps/v1/namespaces/{h.ns}/deployments/iris-stable"
    h.api.post(f"/api/v1/namespaces/{h.ns}/services", json=_foreign_service()).raise_for_status()
    h.api.post(
        f"/apis/apps/v1/namespaces/{h.ns}/deployments", json=_foreign_deployment()
    ).raise_for_status()
    # The Deployment controller writes the person's Deployment's status once; after that,
    # any change to either object is the operator's.
    deployment = wait_for(
        lambda: (d := _read(h, deployment_path)) and "observedGeneration" in d["status"] and d,
        30,
        "the Deployment controller to settle the foreign Deployment",
    )
    service = _read(h, service_path)
    assert service is not None

    h.apply(spec(models.model("v1"), prometheus=h.prometheus.url))
    held = h.wait_status(lambda s: _conflict(s).get("status") == "True", 60, "ChildConflict")
    condition = _conflict(held)
    assert condition["reason"] == "ChildNotOwned"
    assert condition["message"].startswith(
        "Deployment iris-stable (controlled by no controller); "
        "Service iris (controlled by no controller) exist and are not owned"
    )
    assert held["message"] == condition["message"]
    time.sleep(3)  # six more ticks (0.5 s each): still nothing is touched, no second Event
    _untouched(service, _read(h, service_path))
    _untouched(deployment, _read(h, deployment_path))
    assert [d["metadata"]["name"] for d in h.deployments()] == ["iris-stable"]  # no canary
    assert [s["metadata"]["name"] for s in h.services()] == ["iris"]
    (warning,) = [e for e in h.events() if e["reason"] == "ChildNotOwned"]
    assert warning["type"] == "Warning" and warning["message"] == condition["message"]

    # Deleting the ModelDeployment: the garbage collector removes what is ours (the receipt
    # key Secret) and leaves the person's objects, which never got our ownerReference.
    secret_path = f"/api/v1/namespaces/{h.ns}/secrets/iris-receipt-keys"
    assert _read(h, secret_path) is not None
    h.delete()
    wait_for(lambda: _read(h, secret_path) is None, 60, "our Secret to be collected")
    _untouched(service, _read(h, service_path))
    _untouched(deployment, _read(h, deployment_path))


def _scale(h: Sandbox) -> dict[str, Any]:
    response = h.api.get(f"{MD_PATH.format(ns=h.ns)}/iris/scale")
    response.raise_for_status()
    return dict(response.json())


def _replicas(h: Sandbox, variant: str) -> int:
    found = h.deployment(variant)
    return int(found["spec"]["replicas"]) if found else 0


def test_resizing_through_the_scale_subresource_is_followed_mid_canary_without_a_restart(
    harness: Sandbox, models: ModelArtifacts
) -> None:
    """What a HorizontalPodAutoscaler does to a ModelDeployment: PATCH its scale subresource.
    The operator sizes stable from it (and the canary in proportion), never writes it back,
    and the canary in flight carries on at its step."""
    h = harness
    steps = [{"weight": 50, "pause": "10m"}]  # the canary stays at step 0 for the whole test
    h.apply(spec(models.model("v1"), prometheus=h.prometheus.url, steps=steps))
    h.wait_status(lambda s: s.get("phase") == "Healthy", 90, "v1 to serve")
    h.start_traffic()
    h.apply(spec(models.model("v2"), prometheus=h.prometheus.url, steps=steps))
    before = h.wait_status(
        lambda s: s.get("phase") == "Progressing" and s.get("stepStartedAt"), 120, "a canary step"
    )
    scale = _scale(h)
    assert scale["spec"]["replicas"] == 2 and scale["status"]["replicas"] == 2
    assert scale["status"]["selector"] == (
        "coalmine.dev/model-deployment=iris,coalmine.dev/variant=stable"
    )
    canary_before = _replicas(h, "canary")

    patch = {"spec": {"replicas": 4}}
    headers = {"Content-Type": "application/merge-patch+json"}
    h.api.patch(
        f"{MD_PATH.format(ns=h.ns)}/iris/scale", json=patch, headers=headers
    ).raise_for_status()
    wait_for(lambda: _replicas(h, "stable") == 4, 60, "stable to follow the new size")
    wait_for(lambda: _replicas(h, "canary") > canary_before, 60, "the canary to grow with it")
    wait_for(lambda: _scale(h)["status"]["replicas"] == 4, 30, "the scale status to say 4")
    time.sleep(3)  # six more ticks: the operator does not take the replicas back
    assert h.md()["spec"]["runtime"]["replicas"] == 4
    assert _replicas(h, "stable") == 4
    after = h.status()
    assert after["phase"] == "Progressing" and after["currentStep"] == 0
    for key in ("canary", "canaryStartedAt", "stepStartedAt"):
        assert after.get(key) == before[key], (key, after)  # the same canary and step
    spec_writers = {
        field["manager"]
        for field in h.md()["metadata"]["managedFields"]
        if "f:spec" in field.get("fieldsV1", {})
    }
    assert "coalmine-operator" not in spec_writers  # the spec is the person's and the HPA's
