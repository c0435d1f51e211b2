"""Which transitions become notifications, and each format's bytes: from the real engine's
decisions (the rollout simulator), not hand-made ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from coalmine.api import ModelDeployment, ModelDeploymentSpec
from coalmine.k8s import ObjectRef
from coalmine.notify import Notification, notifications
from coalmine.notify.payload import render
from coalmine.subject import Subject
from tests.coalmine.rollout.scenarios import FAIL, PASS, canary_on, finished, script
from tests.coalmine.rollout.sim import Sim

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _md(spec: ModelDeploymentSpec, annotations: dict[str, str] | None = None) -> ModelDeployment:
    return ModelDeployment.from_manifest({
        "apiVersion": "coalmine.dev/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": "ml", "generation": 2, "uid": "u-1",
                     "annotations": annotations or {}},
        "spec": spec.to_manifest(),
    })  # fmt: skip


def _all(sim: Sim, annotations: dict[str, str] | None = None) -> list[Notification]:
    md = _md(sim.spec, annotations)
    subject = Subject.build(ObjectRef("ModelDeployment", "ml", "iris"), "u-1", sim.spec)
    return [n for d in sim.decisions for n in notifications(subject, md, d, NOW)]


def test_a_promotion_notifies_each_transition_once_in_order() -> None:
    sim = canary_on(measure=script(PASS))
    sim.run_until(finished)
    sent = _all(sim)
    assert [n.kind for n in sent] == ["started", "step", "step", "promoted"]
    assert [(n.data["currentStep"], n.data["stepWeight"]) for n in sent[1:3]] == [(1, 30), (2, 60)]
    assert [n.data["weight"] for n in sent[1:3]] == [10, 30]  # raised once the pods are ready
    promoted = sent[-1]
    assert promoted.data["stable"]["version"] == "v2" and promoted.data["canary"] is None
    assert promoted.event.message == "v2 is stable and serves all traffic"
    assert len({n.id for n in sent}) == len(sent)


def test_a_rollback_carries_the_verdict_with_its_numbers() -> None:
    sim = canary_on(measure=script(FAIL))
    sim.run_until(finished)
    sent = _all(sim)
    assert [n.kind for n in sent] == ["started", "rolledback"]
    rolled = sent[-1]
    record = rolled.data["rollback"]
    assert record["check"] == "custom" and record["value"] == FAIL and record["threshold"]
    assert "rolled back" in rolled.data["message"] and "custom" in rolled.data["message"]
    assert rolled.data["severity"] == "Warning"
    assert rolled.data["analysis"]["verdict"] == "fail"


def test_an_annotation_opts_a_model_deployment_out() -> None:
    sim = canary_on(measure=script(PASS))
    sim.run_until(finished)
    assert _all(sim, {"coalmine.dev/notifications": "off"}) == []


def _rolled_back() -> Notification:
    sim = canary_on(measure=script(FAIL))
    sim.run_until(finished)
    return _all(sim)[-1]


def _decoded(fmt: Any) -> tuple[dict[str, Any], str]:
    body, content_type = render(_rolled_back(), fmt)
    return json.loads(body), content_type


def test_cloudevents_structured_mode() -> None:
    event, content_type = _decoded("cloudevents")
    assert content_type == "application/cloudevents+json"
    assert event["specversion"] == "1.0" and event["type"] == "dev.coalmine.rollout.rolledback"
    assert event["source"] == "/apis/coalmine.dev/v1alpha1/namespaces/ml/modeldeployments/iris"
    assert event["subject"] == "ml/iris" and event["time"] == "2026-12-01T10:00:00Z"
    assert event["id"] and event["datacontenttype"] == "application/json"
    assert event["data"]["rollback"]["value"] == FAIL


def test_plain_json_and_slack() -> None:
    plain, content_type = _decoded("json")
    assert content_type == "application/json"
    assert plain["kind"] == "rolledback" and plain["namespace"] == "ml" and plain["uid"] == "u-1"
    assert plain["stable"]["version"] == "v1" and plain["time"] == "2026-12-01T10:00:00Z"
    chat, _ = _decoded("slack")
    assert list(chat) == ["text"]
    assert chat["text"].startswith(":red_circle: ml/iris rolledback: v2 rolled back: ")
