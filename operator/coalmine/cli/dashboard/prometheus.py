"""Prometheus range queries for the dashboard (``/api/v1/query_range``), as ``Matrix`` values.

Like the operator's provider (``coalmine.analysis.prometheus``): a timeout, no redirects, no
proxy settings from the environment, a size cap, and every failure a short fixed text (no
response body reaches the page).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from coalmine.cli.dashboard.series import Matrix

MAX_RESPONSE_BYTES = 16 * 1024 * 1024


class RangeClient:
    """One Prometheus; ``fetch`` is a ``series.RangeFetch``."""

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        self.address = address.rstrip("/")
        self._client = httpx.Client(
            base_url=self.address, timeout=timeout, follow_redirects=False, trust_env=False
        )

    def fetch(self, promql: str, start: float, end: float, step: float) -> Matrix:
        params = {"query": promql, "start": str(start), "end": str(end), "step": str(step)}
        try:
            response = self._client.get("/api/v1/query_range", params=params)
        except httpx.TimeoutException:
            return Matrix(error="Prometheus did not answer in time")
        except httpx.HTTPError:
            return Matrix(error="Prometheus unreachable")
        if len(response.content) > MAX_RESPONSE_BYTES:
            return Matrix(error=f"Prometheus answered more than {MAX_RESPONSE_BYTES} bytes")
        if response.status_code != 200:
            return Matrix(error=f"Prometheus answered HTTP {response.status_code}")
        return parse_matrix(response.content)

    def close(self) -> None:
        self._client.close()


def parse_matrix(body: bytes) -> Matrix:
    """A ``query_range`` answer; anything else is a fixed error text.

    >>> parse_matrix(b'{"status":"success","data":{"resultType":"matrix","result":'
    ...              b'[{"metric":{"outcome":"ok"},"values":[[10,"3"],[15,"NaN"]]}]}}')
    Matrix(series=(({'outcome': 'ok'}, {10.0: 3.0, 15.0: nan}),), error=None)
    """
    try:
        document: Any = json.loads(body)
        if document.get("status") != "success" or document["data"]["resultType"] != "matrix":
            return Matrix(error="Prometheus answered without a range result")
        return Matrix(
            series=tuple(
                (
                    {str(k): str(v) for k, v in item["metric"].items()},
                    {float(t): float(v) for t, v in item["values"]},
                )
                for item in document["data"]["result"]
            )
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return Matrix(error="Prometheus answered a malformed range result")
