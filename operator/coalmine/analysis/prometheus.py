"""The Prometheus provider (``prometheus-api-client``), the only module importing it."""

from __future__ import annotations

from datetime import timedelta
from types import TracebackType

from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

from coalmine.analysis.provider import QueryResult, Sample


class PrometheusProvider:
    """Instant queries against one Prometheus, with a timeout and no hidden retries.

    Retries are the next tick's job: the client's default retry with back-off would stretch
    one failed query past the analysis interval and stall the whole reconcile.
    """

    def __init__(self, address: str, timeout: timedelta) -> None:
        self._connection = PrometheusConnect(
            url=address.rstrip("/"),
            timeout=max(1, round(timeout.total_seconds())),
            retry=Retry(total=0),
        )
        self.address = address

    def query(self, promql: str) -> QueryResult:
        try:
            result = self._connection.custom_query(query=promql)
        except Exception as exc:  # errors are data: connection refused, timeout, 4xx, 5xx
            return QueryResult(error=f"{type(exc).__name__}: {_first_line(exc)}"[:300])
        try:
            return QueryResult(samples=tuple(_sample(item) for item in result))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            return QueryResult(error=f"unexpected result shape: {exc}"[:300])

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> PrometheusProvider:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _sample(item: dict[str, object]) -> Sample:
    labels = item.get("metric", {})
    value = item["value"]
    if not isinstance(labels, dict) or not isinstance(value, list | tuple):
        raise ValueError(f"not a vector sample: {item!r}")
    # Prometheus sends "NaN", "+Inf", "-Inf" as text; float() reads all three.
    return Sample({str(k): str(v) for k, v in labels.items()}, float(value[1]))


def _first_line(exc: BaseException) -> str:
    text = str(exc) or repr(exc)
    return text.splitlines()[0] if text else ""
