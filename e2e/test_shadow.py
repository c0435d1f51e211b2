"""The shadow step on real pods (issue 16): stable mirrors every client request to the canary
through the canary's Service (kube-proxy), compares the two answers and exports the counts;
the ``agreement`` check reads them from Prometheus. No client request ever reaches the canary
at the shadow step: the client Service selects stable only.

The mirror file reaches stable's pods in their receipt-key Secret, refreshed by the real
kubelet (up to its sync period, about a minute): meanwhile no comparison exists and the step
holds, inconclusive. So these specs give the step minutes before ``onInconclusive``.
"""

from __future__ import annotations

import pytest

from e2e.devcluster.servicetraffic import SteadyTraffic
from e2e.devcluster.specs import DEFAULT_CHECKS
from e2e.support.rollout import (
    NAME,
    World,
    check_status,
    given_v1_serving,
    rolled_back,
    wait_status,
)

pytestmark = pytest.mark.e2e

AGREEMENT = {"name": "agreement", "agreement": {"min": 0.9}}
SHADOW_STEPS = [
    {"shadow": 100, "pause": "6s"},
    {"weight": 20, "pause": "6s"},
    {"weight": 50, "pause": "6s"},
]
PATIENT = {"inconclusiveLimit": "5m"}  # the kubelet's Secret refresh, then enough compared rows


def _shadow_version(world: World, ns: str, version: str, artifact: str) -> None:
    world.apply_version(
        ns, version, artifact=artifact, checks=[*DEFAULT_CHECKS, AGREEMENT],
        steps=SHADOW_STEPS, policy=PATIENT,
    )  # fmt: skip


def test_a_disagreeing_canary_is_stopped_at_the_shadow_step_and_never_answers_a_client(
    world: World, ns: str
) -> None:
    # Given v1 serving steady client traffic through its Service
    given_v1_serving(world, ns)
    traffic = SteadyTraffic(world.kube.service_url(ns, NAME), NAME).start()
    try:
        # When v4, which answers the other class, starts with a shadow step
        _shadow_version(world, ns, "v4", "inverted")
        # Then it is rolled back on agreement, at the shadow step
        done = rolled_back(world, ns, "v4")
    finally:
        traffic.stop()
    assert done["rollback"]["check"] == "agreement", done["rollback"]
    agreement = check_status(done, "agreement")
    assert agreement["value"] < 0.5 and agreement["samples"] >= 10, agreement
    assert "compared" in agreement["reason"], agreement
    judged_at = done["analysis"]
    assert judged_at["step"] == 0 and judged_at["weight"] == 0, judged_at  # the shadow step
    # And no client request was ever answered by v4, and none failed
    assert set(traffic.by_version) == {"v1"}, traffic.by_version
    assert set(traffic.statuses) == {200}, (traffic.statuses, traffic.errors[:5])


def test_an_agreeing_canary_goes_on_from_the_shadow_step_to_its_weighted_steps(
    world: World, ns: str
) -> None:
    given_v1_serving(world, ns)
    traffic = SteadyTraffic(world.kube.service_url(ns, NAME), NAME).start()
    try:
        # When v2, the same model, starts with a shadow step
        _shadow_version(world, ns, "v2", "good")
        # Then the shadow step passes on agreement and the canary gets client weight
        moved = wait_status(
            world.kube, ns, NAME, lambda s: (s.get("currentStep") or 0) >= 1, 420,
            "v2 past its shadow step",
        )  # fmt: skip
        shadow_clients = dict(traffic.by_version)
        promoted = wait_status(
            world.kube, ns, NAME,
            lambda s: (s.get("stable") or {}).get("version") == "v2"
            and s.get("phase") == "Healthy",
            420, "v2 promoted",
        )  # fmt: skip
    finally:
        traffic.stop()
    assert set(shadow_clients) == {"v1"}, shadow_clients  # no client during the shadow step
    assert promoted["history"][-1]["outcome"] == "Promoted", promoted["history"]
    assert traffic.by_version["v2"] > 0, traffic.by_version  # weighted steps served clients
    assert set(traffic.statuses) == {200}, (traffic.statuses, traffic.errors[:5])
    assert moved["stable"]["version"] == "v1"
