"""Webhook notifications from real rollouts: the real operator (a subprocess) posts over real
sockets to small HTTP receivers this test runs on loopback.

Three receivers at once: one that answers 200 (plain JSON), one that answers 500 to its first
request and then 200 (CloudEvents, with an auth header from an env var), and one that never
answers. The first two must get every transition once, in order; the third must not slow the
rollouts down.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from e2e.devcluster.sandbox import Sandbox, wait_for
from e2e.devcluster.specs import spec
from e2e.devcluster.tinymodels import ModelArtifacts
from e2e.devcluster.webhooks import WebhookReceiver as Receiver

pytestmark = pytest.mark.integration

AUTH = "Bearer it-s3cret-token"
# On two loaded cores the first looks can lack samples; a pause is not what this test is about.
PATIENT = {"inconclusiveLimit": "60s"}


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver, Receiver]]:
    made = (Receiver(), Receiver(fail_first=1), Receiver(hang=True))
    yield made
    for receiver in made:
        receiver.stop()


def _configure(h: Sandbox, ok: str, flaky: str, hung: str) -> None:
    hooks = [
        {"url": ok, "format": "json"},
        {"url": flaky, "format": "cloudevents", "authHeaderEnv": "IT_HOOK_AUTH",
         "events": ["started", "step", "promoted", "rolledback"]},
        # 3 attempts of 30 s: a tick that waited on it would stall 30 s per attempt.
        {"url": hung, "format": "slack", "timeoutSeconds": 30},
    ]  # fmt: skip
    h.operator_env.update(
        COALMINE_NOTIFICATION_WEBHOOKS=json.dumps(hooks),
        COALMINE_NOTIFICATION_ATTEMPTS="3",
        IT_HOOK_AUTH=AUTH,
    )
    assert h.operator is not None
    h.operator.stop()
    h.start_operator()


class TickWatch:
    """Polls the operator's liveness endpoint (seconds since a reconcile last finished) and
    keeps the largest value seen: a tick held by a webhook would show as 30 s and more.

    It also keeps the longest gap between two answers: a stall shorter than that gap could
    fall between samples, so `worst` means something only when the gap is small."""

    def __init__(self, port: int) -> None:
        self.url, self.worst, self.samples = f"http://127.0.0.1:{port}/healthz", 0.0, 0
        self.longest_gap, self._last = 0.0, time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TickWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                answer = httpx.get(self.url, timeout=2).json()
            except (httpx.HTTPError, ValueError):
                continue
            self.worst = max(self.worst, float(answer["seconds_since_tick"]))
            self.samples += 1
            now = time.monotonic()
            self.longest_gap, self._last = max(self.longest_gap, now - self._last), now


def _event_count(h: Sandbox, reason: str) -> int:
    return sum(e.get("count") or 1 for e in h.events() if e["reason"] == reason)


def test_rollouts_notify_every_transition_once_in_order(
    harness: Sandbox,
    models: ModelArtifacts,
    receivers: tuple[Receiver, Receiver, Receiver],
):
    h = harness
    ok, flaky, hung = receivers
    _configure(h, ok.start(), flaky.start(), hung.start())
    h.apply(spec(models.model("v1"), prometheus=h.prometheus.url))
    h.wait_status(lambda s: s.get("phase") == "Healthy", 180, "v1 to serve")
    h.start_traffic()

    with TickWatch(h.liveness_port) as ticks:
        h.apply(spec(models.model("v2"), policy=PATIENT, prometheus=h.prometheus.url))
        h.wait_status(
            lambda s: s.get("phase") == "Healthy" and s.get("stable", {}).get("version") == "v2",
            300,
            "v2 to be promoted",
        )
        bad = spec(
            models.model("v3"),
            env={"COALMINE_SERVING_FAULT_ERROR_RATE": "0.3"},
            policy=PATIENT,
            prometheus=h.prometheus.url,
        )
        h.apply(bad)
        h.wait_status(lambda s: s.get("phase") == "Degraded", 300, "v3 to be rolled back")
    wait_for(lambda: "rolledback" in ok.kinds(), 10, "the rollback notification")

    # Order: v2 started, stepped, promoted; then v3 started (maybe stepped) and rolled back.
    kinds = ok.kinds()
    assert kinds[0] == "started" and kinds[-1] == "rolledback", kinds
    assert kinds.index("promoted") < len(kinds) - 1 - kinds[::-1].index("started"), kinds
    # Exactly one per transition: as many as the Events that tell the same story.
    assert kinds.count("promoted") == _event_count(h, "Promoted") == 1
    assert kinds.count("rolledback") == _event_count(h, "RolledBack") == 1
    assert kinds.count("started") == _event_count(h, "CanaryCreated") == 2
    assert kinds.count("step") == _event_count(h, "StepAdvanced")
    bodies = [body for _, _, body in ok.received]
    promoted = next(b for b in bodies if b["kind"] == "promoted")
    assert promoted["namespace"] == h.ns and promoted["name"] == "iris"
    assert promoted["stable"]["version"] == "v2" and promoted["canary"] is None
    rolled = bodies[-1]
    assert rolled["stable"]["version"] == "v2" and rolled["rollback"]["version"] == "v3"
    assert rolled["rollback"]["check"] == "error-rate"
    assert 0.05 < rolled["rollback"]["value"] <= 0.6, rolled["rollback"]
    assert "error-rate" in rolled["message"] and "0.05" in rolled["message"]
    assert all(b["id"] and b["time"] for b in bodies)

    # The flaky receiver: its first request failed, the retry delivered it; the same story.
    wait_for(lambda: "rolledback" in flaky.kinds(), 15, "the flaky receiver's rollback")
    assert flaky.requests == len(flaky.received) + 1
    assert flaky.kinds() == [k for k in kinds if k in ("started", "step", "promoted", "rolledback")]
    for _, headers, event in flaky.received:
        assert headers["Content-Type"] == "application/cloudevents+json"
        assert headers["Authorization"] == AUTH
        assert event["specversion"] == "1.0" and event["subject"] == f"{h.ns}/iris"
    assert len({event["id"] for _, _, event in flaky.received}) == len(flaky.received)

    # The receiver that never answers was asked, and held no tick up: ticks kept finishing
    # every few seconds (0.5 s timer) while each of its requests waited 30 s for nothing.
    # The watch answered at least every 10 s through both rollouts (so a 30 s hold could not
    # fall between two samples: it would read 20 s or more), and never saw 15 s.
    assert hung.requests >= 2
    watched = (ticks.samples, ticks.longest_gap, ticks.worst)
    assert ticks.samples >= 40 and ticks.longest_gap < 10, watched
    assert ticks.worst < 15, watched
    operator = h.operator
    assert operator is not None
    wait_for(
        lambda: "dropped: ReadTimeout after 3 attempts" in operator.log_tail(200_000),
        90,
        "the hanging receiver's notification to be dropped (and logged)",
    )
    # The operator's own log never shows the secret (the harness's "=== start:" line does:
    # it records the env the test gave the process).
    logged = [line for line in operator.log_tail(200_000).splitlines() if "=== start" not in line]
    assert logged and not [line for line in logged if AUTH in line]
