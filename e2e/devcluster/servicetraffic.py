"""Client traffic through a real Service, as a user's clients send it (e2e and the real-node
demo; the stand-in tier's traffic, which has no Service to go through, is in traffic.py).

Each prediction goes to the Service's ClusterIP on a new connection (kube-proxy balances
connections, not requests). Its receipt and true label go to a label pipeline
(:mod:`e2e.devcluster.labels`) that posts them seconds later, in batches, through the same
Service on new connections: they reach whichever pod kube-proxy picks, not the one that
predicted.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from e2e.devcluster.labels import LabelPipeline
from e2e.devcluster.tinymodels import N_FEATURES
from e2e.devcluster.traffic import truth_of

NO_REPLY = 0  # the status recorded when the connection was refused, reset or timed out


def wait_until_routed(
    service_url: str, model: str, version: str, consecutive: int = 5, timeout: float = 30.0
) -> int:
    """Until ``consecutive`` predictions in a row through the Service, each on a new
    connection, are answered by ``version``; returns the requests it took.

    The operator reports a model Healthy once its Deployment is available, which the pods'
    readiness decides. kube-proxy programs the new Service's endpoints after that, at most
    once a second (``--iptables-min-sync-period``): a client that starts in between is refused
    (no endpoints yet), or, probably when the ClusterIP was just freed by a deleted Service,
    answered by something else (one 404 seen). Tests that measure their clients from the
    first request wait for the route first, as a user's rollout starts on a Service that
    serves."""
    row = [0.5] * N_FEATURES
    body = {"inputs": [{"name": "x", "shape": [1, N_FEATURES], "datatype": "FP64",
                        "data": [row]}]}  # fmt: skip
    deadline, in_a_row, sent, last = time.monotonic() + timeout, 0, 0, ""
    with httpx.Client(timeout=5.0, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        while in_a_row < consecutive:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service_url} not answered by {version} {consecutive} "
                                   f"times in a row within {timeout}s (last: {last})")  # fmt: skip
            sent += 1
            try:
                reply = http.post(f"{service_url}/v2/models/{model}/infer", json=body)
                answered = reply.json().get("model_version") if reply.status_code == 200 else None
                last = f"HTTP {reply.status_code} from {answered}"
            except (httpx.TransportError, ValueError) as exc:
                answered, last = None, f"{type(exc).__name__}: {exc}"
            in_a_row = in_a_row + 1 if answered == version else 0
            if in_a_row == 0:
                time.sleep(0.2)
    return sent


@dataclass
class SteadyTraffic:
    service_url: str  # http://<ClusterIP>:<port>
    model: str
    rps: float = 10.0  # per client; a client sends one request at a time, so less if slow
    label_delay: float = 3.0
    clients: int = 1  # concurrent senders, for rates one sender cannot reach
    statuses: Counter[int] = field(default_factory=Counter)  # HTTP status (NO_REPLY) -> count
    by_version: Counter[str] = field(default_factory=Counter)  # the version that answered 200
    errors: list[str] = field(default_factory=list)  # what each failed request saw, for reports
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._threads = [
            threading.Thread(target=self._run, name=f"traffic-{n}", daemon=True)
            for n in range(self.clients)
        ]
        self._counting = threading.Lock()
        self._random = random.Random(7)
        # One client without keep-alive: each request opens its own connection, and the client
        # is made once (making one loads the CA bundle: 30-200 ms, which capped the rate).
        self._http = httpx.Client(timeout=5.0, limits=httpx.Limits(max_keepalive_connections=0))
        self.labels = LabelPipeline(lambda: self.service_url, self.model, delay=self.label_delay)

    def start(self) -> SteadyTraffic:
        self.labels.start()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        self._http.close()
        self.labels.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._one()
            self._stop.wait(1.0 / self.rps)

    def _one(self) -> None:
        row = [self._random.random() for _ in range(N_FEATURES)]
        body = {"inputs": [{"name": "x", "shape": [1, N_FEATURES], "datatype": "FP64",
                            "data": [row]}]}  # fmt: skip
        base = f"{self.service_url}/v2/models/{self.model}"
        try:
            reply = self._http.post(f"{base}/infer", json=body)  # a new connection: one pod
        except httpx.TransportError as exc:
            self._count(NO_REPLY, f"{time.strftime('%X')} {type(exc).__name__}: {exc}")
            return
        if reply.status_code != 200:
            self._count(reply.status_code, f"{time.strftime('%X')} HTTP {reply.status_code}: "
                                           f"{reply.text[:200]}")  # fmt: skip
            return
        answer = reply.json()
        self._count(200, version=str(answer.get("model_version")))
        self.labels.add(answer["parameters"]["receipt"], [truth_of(row)])

    def _count(self, status: int, error: str | None = None, version: str | None = None) -> None:
        with self._counting:  # several clients may count at once
            self.statuses[status] += 1
            if error is not None:
                self.errors.append(error)
            if version is not None:
                self.by_version[version] += 1

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    @property
    def failures(self) -> int:
        """Requests without a 200: HTTP errors plus those with no reply at all."""
        return sum(count for status, count in self.statuses.items() if status != 200)

    @property
    def http_errors(self) -> int:
        return self.failures - self.statuses[NO_REPLY]
