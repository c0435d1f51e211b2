"""The test label pipeline's stop: it flushes what waits, and does not wait for nowhere."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from e2e.devcluster.labels import LabelPipeline
from tests.loopback import serving


class _Feedback(BaseHTTPRequestHandler):
    """A model server's feedback endpoint as far as the pipeline sees it: joins every label."""

    received: list[dict] = []

    def do_POST(self) -> None:
        labels = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["labels"]
        type(self).received.extend(labels)
        body = json.dumps({"joined": len(labels), "results": [{"status": 200}] * len(labels)})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def feedback_url() -> Iterator[str]:
    _Feedback.received = []
    with serving(_Feedback) as url:
        yield url


def test_stop_posts_every_waiting_label_without_waiting_out_its_delay(feedback_url: str):
    pipeline = LabelPipeline(lambda: feedback_url, "iris", delay=3600, batch_size=2).start()
    for n in range(5):
        pipeline.add(f"receipt-{n}", [n % 3])
    pipeline.stop()
    assert pipeline.waiting == 0
    assert [label["receipt"] for label in _Feedback.received] == [f"receipt-{n}" for n in range(5)]
    assert (pipeline.joined, pipeline.batches) == (5, 3)


def test_stop_gives_up_at_once_when_there_is_nowhere_to_post():
    """A test that deleted its ModelDeployment has no Service left: the teardown's flush
    waited its whole timeout (30 s) for a pod that would never come."""
    pipeline = LabelPipeline(lambda: None, "iris", delay=3600).start()
    pipeline.add("receipt-0", [1])
    started = time.monotonic()
    pipeline.stop(flush_timeout=120)
    assert time.monotonic() - started < 60  # half the timeout: it did not wait it out
    assert pipeline.waiting == 1  # kept, and said so by summary()
    assert "waiting 1" in pipeline.summary()
