"""observe queries only a Prometheus the operator lists; naming another makes every check
inconclusive for the spec's fault, and no request is made at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from coalmine.api import ModelDeployment, RevisionRef
from coalmine.api.status import ModelDeploymentStatus, Phase
from coalmine.k8s import ObjectRef
from coalmine.observe import measure
from coalmine.rollout.types import QueryProblem
from coalmine.settings import OperatorSettings
from coalmine.subject import Subject
from tests.coalmine.fakes import FakeProvider

NOW = datetime(2026, 1, 1, tzinfo=UTC)
V1 = RevisionRef(revision="r1", version="v1", uri="file:///m1.onnx", format="onnx")
V2 = RevisionRef(revision="r2", version="v2", uri="file:///m.onnx", format="onnx")
STATUS = ModelDeploymentStatus(
    phase=Phase.PROGRESSING, stable=V1, canary=V2, current_step=0, weight=50,
    step_started_at=NOW - timedelta(seconds=10), canary_started_at=NOW - timedelta(minutes=1),
)  # fmt: skip
SETTINGS = OperatorSettings(
    default_prometheus_address="http://prom.monitoring:9090",
    prometheus_endpoints={"team-a": "http://prom.team-a:9090"},
    prometheus_max_timeout=timedelta(seconds=3),
)


def measured(prometheus: dict[str, Any]) -> tuple[list[tuple[str, timedelta]], Any]:
    md = ModelDeployment.from_manifest({
        "apiVersion": "coalmine.dev/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": "team-a", "uid": "u1", "generation": 1},
        "spec": {
            "model": {"name": "iris", "version": "v2", "uri": "file:///m.onnx", "format": "onnx"},
            "canary": {"steps": [{"weight": 50}], "analysis": {"prometheus": prometheus}},
        },
    })  # fmt: skip
    subject = Subject.build(ObjectRef("ModelDeployment", "team-a", "iris"), "u1", md.spec)
    built: list[tuple[str, timedelta]] = []

    def providers(address: str, timeout: timedelta) -> FakeProvider:
        built.append((address, timeout))
        return FakeProvider()

    with_status = md.model_copy(update={"status": STATUS})
    return built, measure(subject, with_status, providers, SETTINGS, NOW)


def test_the_named_endpoint_is_queried_with_the_capped_timeout() -> None:
    built, _ = measured({"endpoint": "team-a", "timeout": "20s"})
    assert built == [("http://prom.team-a:9090", timedelta(seconds=3))]


def test_an_address_outside_the_list_is_never_queried() -> None:
    built, measurements = measured({"address": "http://10.0.0.1:8080"})
    assert built == []
    assert measurements and all(
        m.canary.problem == QueryProblem.QUERY_INVALID
        and m.canary.error.startswith("spec.canary.analysis.prometheus.address: not one")
        for m in measurements
    )
