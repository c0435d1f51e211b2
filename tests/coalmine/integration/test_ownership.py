"""Objects that are not ours, on a real API server with the operator under its own RBAC and a
real garbage collector: a Service and a Deployment a person made under the names a
ModelDeployment's children would have are never written (spec, ownerReferences and
managedFields as they were), the ModelDeployment says so with ``ChildConflict`` and one Event,
and deleting the ModelDeployment leaves them alive."""

from __future__ import annotations

import time
from typing import Any

import pytest

from e2e.devcluster.sandbox import Sandbox, wait_for
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
