"""One webhook's queue and thread: bounded, retried with backoff up to a cap, drops counted.

The queue tests script the ``Post`` (our own seam); ``http_post`` is tested against real
servers on loopback here, and end to end in tests/coalmine/integration/test_notifications.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from coalmine.notify.sender import RetryableError, WebhookSender, http_post, where
from tests.loopback import serving


class Script:
    """Answers each post with the next outcome (None = accepted); records bodies."""

    def __init__(self, *outcomes: Exception | None, block: threading.Event | None = None):
        self.outcomes, self.bodies, self.block = list(outcomes), [], block

    def __call__(self, body: bytes, headers: dict[str, str]) -> None:
        if self.block is not None:
            self.block.wait()
        self.bodies.append(body)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome


@pytest.fixture
def waits() -> list[float]:
    return []


def _sender(post: Script, waits: list[float], queue_size: int = 8, attempts: int = 4):
    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return False

    return WebhookSender("https://hooks.example/T0/secret", post, queue_size=queue_size,
                         attempts=attempts, wait=wait)  # fmt: skip


@pytest.fixture
def senders() -> Iterator[list[WebhookSender]]:
    made: list[WebhookSender] = []
    yield made
    for sender in made:
        sender.close()


def test_sends_in_order(senders: list[WebhookSender], waits: list[float]) -> None:
    post = Script()
    senders.append(sender := _sender(post, waits))
    for i in range(5):
        assert sender.offer(f"{i}".encode(), {}, f"n{i}")
    assert sender.drain(5)
    assert post.bodies == [b"0", b"1", b"2", b"3", b"4"]
    assert (sender.counts.sent, sender.counts.retried, waits) == (5, 0, [])


def test_retries_with_doubling_backoff_then_succeeds(
    senders: list[WebhookSender], waits: list[float]
) -> None:
    post = Script(RetryableError("HTTP 500"), RetryableError("HTTP 503"), None)
    senders.append(sender := _sender(post, waits))
    sender.offer(b"x", {}, "promoted")
    assert sender.drain(5)
    assert post.bodies == [b"x", b"x", b"x"] and waits == [1.0, 2.0]
    assert (sender.counts.sent, sender.counts.retried, sender.counts.dropped_failed) == (1, 2, 0)


def test_gives_up_after_the_last_attempt_and_goes_on(
    senders: list[WebhookSender], waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    post = Script(*[RetryableError("ConnectError")] * 3)
    senders.append(sender := _sender(post, waits, attempts=3))
    sender.offer(b"lost", {}, "rolledback ml/iris")
    sender.offer(b"next", {}, "step ml/iris")
    assert sender.drain(5)
    assert post.bodies == [b"lost"] * 3 + [b"next"]
    assert (sender.counts.dropped_failed, sender.counts.sent) == (1, 1)
    logged = caplog.text
    assert "rolledback ml/iris to https://hooks.example dropped: ConnectError after 3" in logged
    assert "secret" not in logged  # the URL's path (a chat webhook's secret) is never logged


def test_an_answer_not_worth_retrying_is_dropped_at_once(
    senders: list[WebhookSender], waits: list[float]
) -> None:
    post = Script(RuntimeError("HTTP 404"))
    senders.append(sender := _sender(post, waits))
    sender.offer(b"x", {}, "step")
    assert sender.drain(5)
    assert (len(post.bodies), sender.counts.dropped_failed, waits) == (1, 1, [])


def test_a_full_queue_drops_without_blocking(
    senders: list[WebhookSender], waits: list[float]
) -> None:
    hung = threading.Event()  # the receiver hangs: the thread holds one, the queue two more
    post = Script(block=hung)
    senders.append(sender := _sender(post, waits, queue_size=2))
    accepted = [sender.offer(f"{i}".encode(), {}, "step") for i in range(6)]
    # One may already be in the thread's hands; the queue itself never holds more than two.
    assert accepted.count(True) in (2, 3) and accepted[:2] == [True, True]
    assert sender.counts.dropped_full == accepted.count(False)
    hung.set()
    assert sender.drain(5)
    assert sender.counts.sent == accepted.count(True)


def test_where_shows_scheme_and_host_only() -> None:
    assert where("https://hooks.slack.com/services/T0/B0/XYZ?x=1") == "https://hooks.slack.com"
    assert where("http://10.0.0.5:8080/h") == "http://10.0.0.5:8080"


def test_http_post_follows_no_redirect_and_sends_its_header_nowhere_else() -> None:
    """A real server on loopback answers 302 to another one: the post fails (not retried),
    and the other server never sees the request or its Authorization header."""
    from e2e.devcluster.webhooks import WebhookReceiver

    elsewhere = WebhookReceiver()
    target = elsewhere.start()

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    try:
        with serving(Redirect) as url:
            post = http_post(f"{url}/h", timeout=5)
            with pytest.raises(RuntimeError, match="HTTP 302"):
                post(b"{}", {"Authorization": "Bearer secret"})
    finally:
        elsewhere.stop()
    assert elsewhere.requests == 0


def test_http_post_retries_server_errors_and_refused_connections() -> None:
    from e2e.devcluster.webhooks import WebhookReceiver

    failing = WebhookReceiver(fail_first=1)
    url = failing.start()
    try:
        post = http_post(url, timeout=5)
        with pytest.raises(RetryableError, match="HTTP 500"):
            post(b"{}", {})
        post(b'{"a": 1}', {})  # the second answer is 200
        assert failing.bodies() == [{"a": 1}]
    finally:
        failing.stop()
    with pytest.raises(RetryableError, match="ConnectError"):
        http_post(url, timeout=2)(b"{}", {})  # nobody listens there any more


def test_the_counts_reach_metrics_per_webhook_and_result(
    senders: list[WebhookSender], waits: list[float]
) -> None:
    """What a full queue dropped and what was sent show on /metrics, read from the senders
    themselves at scrape time; the webhook is named by index and host only."""
    from prometheus_client import CollectorRegistry

    from coalmine.notify.metrics import NotificationCounts

    hung = threading.Event()
    senders.append(sender := _sender(Script(block=hung), waits, queue_size=1))
    accepted = [sender.offer(b"x", {}, "step") for _ in range(5)]
    registry = CollectorRegistry()
    registry.register(NotificationCounts([sender]))
    hook = {"webhook": f"0:{sender.where}"}

    def value(result: str) -> float | None:
        return registry.get_sample_value("coalmine_notifications_total", {**hook, "result": result})

    assert value("dropped_full") == accepted.count(False) >= 3
    hung.set()
    assert sender.drain(5)
    assert value("sent") == accepted.count(True)
    assert value("dropped_failed") == 0
