"""The operator reads a Deployment's pods for a fetch failure only while it is not fully
available, with one list by its variant and current revision."""

from __future__ import annotations

from typing import Any

from coalmine.k8s import ObjectRef
from coalmine.manifests import Variant
from coalmine.observe import observe_fetch
from coalmine.rollout.types import ChildObservation
from coalmine.subject import Subject
from tests.coalmine.fakes import FakeKube
from tests.coalmine.rollout.scenarios import canary_spec

LINE = "coalmine-serve: error: ArtifactAccessDenied: s3://b/k: AccessDenied (403)"
SUBJECT = Subject.build(ObjectRef("ModelDeployment", "ml", "iris"), "u-1", canary_spec())


def _pod(name: str, revision: str) -> dict[str, Any]:
    labels = {
        "coalmine.dev/model-deployment": "iris",
        "coalmine.dev/variant": "canary",
        "coalmine.dev/revision": revision,
    }
    terminated = {"exitCode": 1, "reason": "Error", "message": LINE, "finishedAt": "t"}
    fetch = {"name": "fetch-model", "lastState": {}, "state": {"terminated": terminated}}
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ml", "labels": labels},
        "status": {"initContainerStatuses": [fetch]},
    }


def _kube() -> FakeKube:
    kube = FakeKube()
    kube.put(_pod("old", "r1"))  # a superseded revision's pod, still terminating
    return kube


def test_a_fully_available_deployment_costs_no_read() -> None:
    kube = _kube()
    kube.put(_pod("new", "r2"))
    ready = ChildObservation(revision="r2", replicas=2, ready_replicas=2, updated=True)
    assert observe_fetch(kube, SUBJECT, Variant.CANARY, ready) is None
    scaled_down = ChildObservation(revision="r2", replicas=0, ready_replicas=0, updated=True)
    assert observe_fetch(kube, SUBJECT, Variant.CANARY, scaled_down) is None
    assert observe_fetch(kube, SUBJECT, Variant.CANARY, None) is None
    assert kube.pod_lists == []


def test_a_starting_deployment_is_read_once_for_its_own_revision() -> None:
    kube = _kube()
    starting = ChildObservation(revision="r2", replicas=1, ready_replicas=0, updated=True)
    assert observe_fetch(kube, SUBJECT, Variant.CANARY, starting) is None  # r1's pod ignored
    kube.put(_pod("new", "r2"))
    found = observe_fetch(kube, SUBJECT, Variant.CANARY, starting)
    assert found is not None and found.reason == "ArtifactAccessDenied"
    assert kube.pod_lists[-1] == {
        "coalmine.dev/model-deployment": "iris",
        "coalmine.dev/variant": "canary",
        "coalmine.dev/revision": "r2",
    }
    assert len(kube.pod_lists) == 2
