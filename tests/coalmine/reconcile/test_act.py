"""A revision's pods are built from the runtime it was created with, not today's spec."""

from __future__ import annotations

from coalmine import manifests
from coalmine.act import template_spec
from coalmine.api import ModelDeploymentSpec, RevisionRef
from coalmine.manifests import Owner
from coalmine.settings import OperatorSettings
from tests.coalmine.fakes import FakeKube

OWNER = Owner("iris", "ml", "u1")
MODEL = {"name": "iris", "version": "v1", "uri": "file:///m.onnx", "format": "onnx"}


def _spec(version: str, env: dict[str, str]) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {
            "model": {**MODEL, "version": version},
            "runtime": {"env": [{"name": k, "value": v} for k, v in env.items()]},
        }
    )


def test_a_canary_runtime_change_never_leaks_into_stable():
    old, new = _spec("v1", {}), _spec("v2", {"COALMINE_SERVING_FAULT_ERROR_RATE": "0.2"})
    v1 = RevisionRef(revision=old.revision(), version="v1", uri=MODEL["uri"], format="onnx")
    kube = FakeKube()
    kube.put(manifests.deployment(OWNER, old, "stable", v1, 2, OperatorSettings()))
    rebuilt = template_spec(kube, OWNER, new, v1.revision)
    assert rebuilt.runtime.env == []
    assert template_spec(kube, OWNER, new, new.revision()) is new


def test_unknown_revision_falls_back_to_the_spec():
    spec = _spec("v2", {"A": "1"})
    assert template_spec(FakeKube(), OWNER, spec, "nope") is spec
