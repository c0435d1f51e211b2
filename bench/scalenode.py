"""The pods' side of the B9 scale bench, without a process per pod.

``ReadyNode`` plays a kubelet that never runs anything: every pod of the namespace is marked
Ready in ``pods/status`` (so the real ReplicaSet and Deployment controllers report the
Deployments available, exactly as they would with real pods), and one HTTP exporter serves, for
every revision that has a Ready pod, the request counter and latency histogram a
``coalmine-serve`` pod would export, labelled with the pod's model, version, variant and
revision (the labels the operator's queries select on). One Prometheus target instead of 550
uvicorn processes: the operator's queries and Prometheus' series are the same; only the
scrape fan-out is smaller.

The counters grow at ``REQUESTS_PER_SECOND`` with no errors and a 10 ms latency, so every
check passes and a canary stays in its (long) pause, analysed at every interval.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from coalmine_serving import contract

REQUESTS_PER_SECOND = 5.0
LATENCY_SECONDS = 0.01
POLL_SECONDS = 1.0
POD_LABELS = {
    contract.LABEL_MODEL: "coalmine.dev/model",
    contract.LABEL_VERSION: "coalmine.dev/version",
    contract.LABEL_VARIANT: "coalmine.dev/variant",
    contract.LABEL_REVISION: "coalmine.dev/revision",
}
Group = tuple[str, ...]
"""One revision's series labels, in ``contract.BASE_LABELS`` order."""


class ReadyNode:
    """Marks the namespace's pods Ready and exports metrics for the revisions they run."""

    def __init__(self, api: httpx.Client, namespace: str) -> None:
        self._api, self._namespace = api, namespace
        self._since: dict[Group, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ready-node", daemon=True)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._serve = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.errors: list[str] = []

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()
        self._serve.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._server.shutdown()
        self._server.server_close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync()
            except httpx.HTTPError as exc:  # the bench reports it; a blip must not end the node
                self.errors.append(str(exc)[:200])
            self._stop.wait(POLL_SECONDS)

    def _sync(self) -> None:
        pods = self._api.get(f"/api/v1/namespaces/{self._namespace}/pods").json()["items"]
        groups: set[Group] = set()
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            if not _ready(pod):
                self._mark_ready(pod["metadata"]["name"])
            groups.add(_group(pod["metadata"].get("labels", {})))
        now = time.monotonic()
        with self._lock:
            self._since = {g: self._since.get(g, now) for g in groups}

    def _mark_ready(self, name: str) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        kinds = ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        status = {
            "phase": "Running",
            "startTime": now,
            "conditions": [{"type": k, "status": "True", "lastTransitionTime": now} for k in kinds],
        }
        self._api.patch(
            f"/api/v1/namespaces/{self._namespace}/pods/{name}/status",
            json={"status": status},
            headers={"Content-Type": "application/merge-patch+json"},
        )

    def exposition(self) -> str:
        """Prometheus text: per revision, the counter and histogram its pods would export."""
        now = time.monotonic()
        with self._lock:
            groups = dict(self._since)
        lines: list[str] = []
        for group, since in sorted(groups.items()):
            count = round(REQUESTS_PER_SECOND * (now - since))
            pairs = zip(contract.BASE_LABELS, group, strict=True)
            labels = ",".join(f'{k}="{v}"' for k, v in pairs)
            lines.append(f'{contract.REQUESTS_TOTAL.name}{{{labels},outcome="success"}} {count}')
            histogram = contract.REQUEST_DURATION
            for edge in contract.LATENCY_BUCKETS:
                inside = count if edge >= LATENCY_SECONDS else 0
                lines.append(f'{histogram.series("bucket")}{{{labels},le="{edge}"}} {inside}')
            lines.append(f'{histogram.series("bucket")}{{{labels},le="+Inf"}} {count}')
            lines.append(f"{histogram.series('count')}{{{labels}}} {count}")
            lines.append(f"{histogram.series('sum')}{{{labels}}} {count * LATENCY_SECONDS}")
        return "\n".join(lines) + "\n"


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _group(labels: dict[str, str]) -> Group:
    return tuple(labels.get(POD_LABELS[name], "") for name in contract.BASE_LABELS)


def _handler(node: ReadyNode) -> type[BaseHTTPRequestHandler]:
    class Metrics(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = node.exposition().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # one scrape a second: not worth a line each

    return Metrics
