"""``Notifier.decided``, the one call a tick makes: each webhook gets the kinds it asked for,
in its format, with its auth header; a failure to build a notification never reaches the tick."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from coalmine.k8s import ObjectRef
from coalmine.notify import Notifier
from coalmine.notify.sender import WebhookSender
from coalmine.settings import Webhook
from coalmine.subject import Subject
from tests.coalmine.notify.test_payload import NOW, _md
from tests.coalmine.rollout.scenarios import PASS, canary_on, finished, script


class Recorder:
    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], dict[str, object]]] = []

    def __call__(self, body: bytes, headers: dict[str, str]) -> None:
        self.posts.append((headers, json.loads(body)))


@pytest.fixture
def wired() -> Iterator[tuple[Notifier, Recorder, Recorder]]:
    everything, chat = Recorder(), Recorder()
    hooks = []
    for hook, post, auth in (
        (Webhook(url="https://a.example/h", format="cloudevents"), everything,
         {"Authorization": "Bearer x"}),
        (Webhook(url="https://b.example/h", format="slack", events=["promoted"]), chat, {}),
    ):  # fmt: skip
        hooks.append((hook, WebhookSender(hook.url or "", post, queue_size=16, attempts=1), auth))
    notifier = Notifier(hooks)
    yield notifier, everything, chat
    notifier.close()


def test_each_webhook_gets_its_kinds_in_its_format(
    wired: tuple[Notifier, Recorder, Recorder],
) -> None:
    notifier, everything, chat = wired
    sim = canary_on(measure=script(PASS))
    sim.run_until(finished)
    md = _md(sim.spec)
    subject = Subject.build(ObjectRef("ModelDeployment", "ml", "iris"), "u-1", sim.spec)
    for decision in sim.decisions:
        notifier.decided(subject, md, decision, NOW)
    for _, sender, _ in notifier.hooks:
        assert sender.drain(5)
    types = [body["type"] for _, body in everything.posts]
    assert types == [f"dev.coalmine.rollout.{k}" for k in ("started", "step", "step", "promoted")]
    assert all(h["Authorization"] == "Bearer x" for h, _ in everything.posts)
    assert all(h["Content-Type"] == "application/cloudevents+json" for h, _ in everything.posts)
    assert [body for _, body in chat.posts] == [
        {"text": ":large_green_circle: ml/iris promoted: v2 is stable and serves all traffic"}
    ]
    assert "Authorization" not in chat.posts[0][0]


def test_a_notification_that_cannot_be_built_never_fails_the_tick(
    wired: tuple[Notifier, Recorder, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    notifier, everything, _ = wired
    sim = canary_on(measure=script(PASS))
    decision = sim.tick()
    subject = Subject.build(ObjectRef("ModelDeployment", "ml", "iris"), "u-1", sim.spec)
    notifier.decided(subject, None, decision, NOW)  # type: ignore[arg-type]
    assert "notifications not built" in caplog.text and everything.posts == []
