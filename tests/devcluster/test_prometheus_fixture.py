"""The Prometheus fixture scrapes a real HTTP target and answers PromQL about it."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from e2e.devcluster.prometheus import PrometheusServer
from tests.loopback import serving

pytestmark = pytest.mark.integration


class _MetricsHandler(BaseHTTPRequestHandler):
    body = b"# TYPE probe_value gauge\nprobe_value 42.5\n"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean


@pytest.fixture
def metrics_target() -> Iterator[str]:
    with serving(_MetricsHandler) as url:
        yield url.removeprefix("http://")  # a scrape target is host:port


def test_query_returns_the_scraped_value_with_job_and_labels(
    prometheus: PrometheusServer, metrics_target: str
) -> None:
    prometheus.set_targets([metrics_target], job="canary", labels={"track": "stable"})

    [sample] = prometheus.wait_for('probe_value{job="canary"}')

    assert float(sample["value"][1]) == 42.5
    assert sample["metric"]["track"] == "stable"
    assert sample["metric"]["instance"] == metrics_target


def test_history_survives_a_restart(prometheus: PrometheusServer, metrics_target: str) -> None:
    prometheus.set_targets([metrics_target])
    prometheus.wait_for("probe_value")

    prometheus.stop()
    assert not prometheus.running
    prometheus.start()

    [sample] = prometheus.query("max_over_time(probe_value[10m])")
    assert float(sample["value"][1]) == 42.5
