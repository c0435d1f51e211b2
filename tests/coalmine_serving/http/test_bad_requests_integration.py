"""Failure scenario 27 on a real ``coalmine-serve`` process over a real socket: malformed
requests (non-JSON, wrong shape, NaN, too many rows) get a 4xx naming the problem, never a 500,
and are counted as client errors, apart from the server errors the canary is judged on."""

from __future__ import annotations

import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.coalmine_serving.http.test_app import ROW, _infer_body

pytestmark = pytest.mark.integration


def _outcomes(url: str) -> dict[str, float]:
    return {
        s.labels["outcome"]: s.value
        for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text)
        for s in family.samples
        if s.name == "coalmine_requests_total"
    }


@pytest.mark.parametrize("server", [("--max-rows", "5")], indirect=True)
def test_malformed_requests_are_4xx_and_kept_out_of_server_errors(server) -> None:  # type: ignore[no-untyped-def]
    url = f"{server.url}/v2/models/iris/infer"
    nan_row = _infer_body([ROW])
    nan_row["inputs"][0]["data"] = [[float("nan")] * len(ROW)]
    replies = [
        httpx.post(url, content=b"{oops", headers={"Content-Type": "application/json"}),
        httpx.post(url, json=_infer_body([[1.0, 2.0]])),  # wrong shape
        httpx.post(url, content=json.dumps(nan_row).encode()),  # NaN, as Python's json writes it
        httpx.post(url, json=_infer_body([ROW] * 6)),  # more rows than allowed
    ]
    codes = [r.status_code for r in replies]
    assert all(400 <= code < 500 for code in codes), [(r.status_code, r.text) for r in replies]
    assert all(r.json()["error"] for r in replies)
    # A NaN literal is not JSON: refused while parsing, before any array is built.
    assert "not valid JSON" in replies[2].json()["error"]
    assert httpx.post(url, json=_infer_body([ROW])).status_code == 200  # still serving
    outcomes = _outcomes(server.url)
    assert outcomes.get("server_error", 0) == 0, outcomes
    assert outcomes["client_error"] == len(replies), outcomes
