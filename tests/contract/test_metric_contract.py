"""The metric contract, proven end to end: a real Prometheus scrapes real servers.

Every metric in ``coalmine_serving.contract.ALL_METRICS`` must reach Prometheus under its
declared name with exactly its declared labels, and the PromQL the operator writes from the
contract must give the expected numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from coalmine_serving import contract as c
from tests.coalmine_serving import models
from tests.coalmine_serving.http.test_app import ROW, _infer_body
from tests.coalmine_serving.service.test_receipts import write_keys

pytestmark = pytest.mark.integration
SERIES_LABELS = {"__name__", "job", "instance"}


@pytest.fixture
def servers(artifacts, tmp_path: Path) -> Iterator[dict[str, models.ServerProcess]]:  # type: ignore[no-untyped-def]
    keys = write_keys(tmp_path / "keys.json", ("k1", b"k" * 32, "2020-01-01T00:00:00Z"))
    shared = ("--receipt-keys-file", str(keys))
    inputs = ("--input-features", "x0=0:0.5")  # coalmine_input_feature exists only when set
    procs = {
        "canary": models.ServerProcess(
            artifacts["onnx_clf"], tmp_path / "clf.log", "--variant", "canary",
            "--model-version", "7", "--revision", "r7", *shared, *inputs,
        ),
        "stable": models.ServerProcess(
            artifacts["onnx_reg"], tmp_path / "reg.log", "--model-version", "6",
            "--revision", "r6", *shared, *inputs,
        ),
    }  # fmt: skip
    with models.all_ready(procs):
        yield procs


def _traffic(canary: models.ServerProcess, stable: models.ServerProcess) -> None:
    receipts = []
    for i in range(3):
        reply = httpx.post(f"{canary.url}/v2/models/iris/infer", json=_infer_body([ROW], f"c{i}"))
        assert reply.status_code == 200
        receipts.append(reply.json()["parameters"]["receipt"])
    assert httpx.post(f"{canary.url}/v2/models/iris/infer", content=b"{").status_code == 400
    # Two of three labels agree with the prediction (class 1): accuracy 2/3. They reach the
    # OTHER server, as labels do through a Service, and count for the canary all the same.
    labels = [{"receipt": r, "truth": t} for r, t in zip(receipts, [1, 1, 0], strict=True)]
    batch = httpx.post(f"{stable.url}/v2/models/iris/feedback", json={"labels": labels})
    assert batch.json()["joined"] == 3
    reply = httpx.post(f"{stable.url}/v2/models/iris/infer", json=_infer_body([ROW], "s"))
    label = {"receipt": reply.json()["parameters"]["receipt"], "truth": 0.0}
    assert httpx.post(f"{canary.url}/v2/models/iris/feedback", json=label).status_code == 200


def test_every_contract_metric_reaches_prometheus_with_its_labels(prometheus, servers) -> None:  # type: ignore[no-untyped-def]
    canary, stable = servers["canary"], servers["stable"]
    _traffic(canary, stable)
    prometheus.set_targets([f"127.0.0.1:{canary.port}", f"127.0.0.1:{stable.port}"])
    prometheus.wait_for('coalmine_feedback_total{variant="canary"} > 0')
    for spec in c.ALL_METRICS:
        name = spec.series("bucket") if spec.kind is c.MetricKind.HISTOGRAM else spec.name
        series = prometheus.wait_for(name, timeout=10)
        extra = {"le"} if spec.kind is c.MetricKind.HISTOGRAM else set()
        for item in series:
            assert set(item["metric"]) == SERIES_LABELS | set(spec.labels) | extra, spec.name
            assert item["metric"][c.LABEL_MODEL] == "iris"


def test_operator_promql_from_the_contract_gives_the_expected_numbers(prometheus, servers) -> None:  # type: ignore[no-untyped-def]
    canary, stable = servers["canary"], servers["stable"]
    _traffic(canary, stable)
    prometheus.set_targets([f"127.0.0.1:{canary.port}", f"127.0.0.1:{stable.port}"])
    sel = '{model="iris",variant="canary",version="7"}'
    # All traffic happened before the first scrape, so once each target has been scraped
    # once, every value below is final. Targets are scraped at different offsets: wait for both.
    # A feedback series shows 0 on its first scrape and its counts from the next one on.
    prometheus.wait_for(f'sum({c.FEEDBACK_TOTAL.name}{{revision="r7"}}) >= 3')
    prometheus.wait_for(f'{c.FEEDBACK_ABS_ERROR.series("count")}{{variant="stable"}} > 0')
    by_outcome = {
        r["metric"]["outcome"]: float(r["value"][1])
        for r in prometheus.query(f"{c.REQUESTS_TOTAL.name}{sel}")
    }
    assert by_outcome == {
        "success": 3.0, "client_error": 1.0, "server_error": 0.0, "shed": 0.0, "timeout": 0.0
    }  # fmt: skip
    accuracy = prometheus.query(
        f'sum({c.FEEDBACK_TOTAL.name}{{variant="canary",result="correct"}})'
        f' / sum({c.FEEDBACK_TOTAL.name}{{variant="canary"}})'
    )
    assert float(accuracy[0]["value"][1]) == pytest.approx(2 / 3)
    classes = prometheus.query(f'{c.PREDICTIONS_TOTAL.name}{{variant="canary",class="1"}}')
    assert float(classes[0]["value"][1]) == 3.0
    p99 = prometheus.query(
        f"histogram_quantile(0.99, sum by (le) ({c.REQUEST_DURATION.series('bucket')}{sel}))"
    )
    assert 0 < float(p99[0]["value"][1]) <= c.LATENCY_BUCKETS[-1]
    abs_error = prometheus.query(f'{c.FEEDBACK_ABS_ERROR.series("count")}{{variant="stable"}}')
    assert float(abs_error[0]["value"][1]) == 1.0
    info = prometheus.query(f'{c.MODEL_INFO.name}{{variant="stable",version="6"}}')
    assert info[0]["metric"]["format"] == "onnx" and len(info[0]["metric"]["sha256"]) == 64
