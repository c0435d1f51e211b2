"""Notifications from a real rollout on the real node: the operator pod, installed by the
chart with a CloudEvents webhook, posts each transition to a receiver on this machine (on the
pod bridge, where the pods fetch their models); order and content are checked (issue 17)."""

from __future__ import annotations

import pytest

from e2e.devcluster.servicetraffic import SteadyTraffic
from e2e.support.kube import eventually
from e2e.support.rollout import NAME, World, given_v1_serving, wait_status

pytestmark = pytest.mark.e2e


def test_a_promotion_is_notified_once_per_transition_in_order(world: World, ns: str) -> None:
    # Given v1 serving steady client traffic
    given_v1_serving(world, ns)
    traffic = SteadyTraffic(world.kube.service_url(ns, NAME), NAME).start()
    try:
        # When a good v2 is applied and promoted
        world.apply_version(ns, "v2")
        wait_status(
            world.kube, ns, NAME,
            lambda s: s.get("phase") == "Healthy" and s.get("stable", {}).get("version") == "v2",
            420, "v2 to be promoted",
        )  # fmt: skip
    finally:
        traffic.stop()
    # Then the webhook heard, in order: the canary started, each step, the promotion
    receiver, subject = world.product.webhooks, f"{ns}/{NAME}"
    eventually(
        lambda: True if "promoted" in receiver.kinds(subject) else None,
        timeout=30,
        what="the promoted notification",
    )
    kinds = receiver.kinds(subject)
    assert kinds[0] == "started" and kinds[-1] == "promoted", kinds
    assert kinds.count("started") == kinds.count("promoted") == 1, kinds
    assert kinds.count("step") == len(world.events(ns, "StepAdvanced")), kinds
    # And each is a CloudEvent about this object, with the facts the Events state
    events = receiver.bodies(subject)
    for event in events:
        assert event["specversion"] == "1.0" and event["type"].startswith("dev.coalmine.rollout.")
        assert event["source"].endswith(f"/namespaces/{ns}/modeldeployments/{NAME}")
        assert event["data"]["namespace"] == ns and event["data"]["name"] == NAME
    started, promoted = events[0]["data"], events[-1]["data"]
    assert started["canary"]["version"] == "v2" and started["stable"]["version"] == "v1"
    assert promoted["stable"]["version"] == "v2" and promoted["canary"] is None
    assert promoted["message"] == "v2 is stable and serves all traffic"
    checks = {c["name"]: c for c in promoted["analysis"]["checks"]}
    assert checks["error-rate"]["verdict"] == "pass" and checks["error-rate"]["samples"] > 0
    assert len({e["id"] for e in events}) == len(events)
