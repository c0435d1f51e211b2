"""Client traffic and an observation recorder for the integration scenarios and the demo.

``TrafficGenerator`` sends real inference requests to the stand-in's pods exactly as the
router splits them: with the ``replicas`` router it does what kube-proxy does, picking
uniformly among the ready pods the client Service's selector matches; with ``gatewayAPI`` it
picks a backend by the HTTPRoute's weights, then a pod of that backend's Service. Each
prediction's receipt and true label go to a :class:`~e2e.devcluster.labels.LabelPipeline`,
which posts them seconds later, in batches, to a pod the client Service picks anew.

``Recorder`` polls the routing objects, the canary Deployment and the ModelDeployment status,
so tests can assert the ORDER of what happened (traffic off the canary before scale-down).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from e2e.devcluster.labels import LabelPipeline
from e2e.devcluster.standin import KubeletStandIn, StandInPod


def truth_of(row: list[float]) -> int:
    """The tiny models' ground truth (see e2e.devcluster.tinymodels)."""
    return int(row[0] > 0.5)


class TrafficGenerator:
    def __init__(
        self,
        api: httpx.Client,
        standin: KubeletStandIn,
        namespace: str,
        name: str,
        model: str,
        rps: float = 25.0,
        skip_variant: str | None = None,
        label_delay: float = 2.0,
        canary_input_shift: float = 0.0,
    ) -> None:
        self._api, self._standin = api, standin
        self._namespace, self._name, self._model = namespace, name, model
        self._period = 1.0 / rps
        self._skip_variant = skip_variant  # "no traffic reaches the canary" scenario
        # "the canary's clients are another population": its rows get x3 moved by this much
        self._canary_input_shift = canary_input_shift
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._http = httpx.Client(timeout=5.0)
        self._random = random.Random(7)
        self._random_labels = random.Random(11)  # its own stream: used on the pipeline's thread
        self.sent: Counter[str] = Counter()  # variant -> requests
        self.statuses: Counter[int] = Counter()
        self.failed: Counter[str] = Counter()  # variant -> non-200 replies
        self.dropped: Counter[str] = Counter()  # variant -> no reply (pod stopped under us)
        self.labels = LabelPipeline(self._any_service_pod, model, delay=label_delay)

    def start(self) -> None:
        self.labels.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._http.close()
        self.labels.stop()

    def _any_service_pod(self) -> str | None:
        """Where the label pipeline's next batch goes: any ready pod of the client Service,
        whichever variant or version, as kube-proxy would pick for a new connection."""
        pods = self._endpoints(self._name, skip=None)
        return f"http://{self._random_labels.choice(pods).address}" if pods else None

    def _run(self) -> None:
        backends: list[tuple[int, list[StandInPod]]] = []
        refreshed = 0.0
        while not self._stop.is_set():
            if time.monotonic() - refreshed > 0.3:
                backends, refreshed = self._backends(), time.monotonic()
            live = [(weight, pods) for weight, pods in backends if weight > 0 and pods]
            if live:
                (pods,) = self._random.choices([p for _, p in live], [w for w, _ in live])
                self._send(self._random.choice(pods))
            self._stop.wait(self._period)

    def _backends(self) -> list[tuple[int, list[StandInPod]]]:
        """(weight, pods) per backend: the HTTPRoute's weighted Services when there is a
        route (gatewayAPI), else the one client Service (replicas router)."""
        ns = self._namespace
        route = self._api.get(
            f"/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes/{self._name}"
        )
        if route.status_code == 200:
            refs = [r for rule in route.json()["spec"]["rules"] for r in rule["backendRefs"]]
            return [(int(r.get("weight", 1)), self._endpoints(r["name"])) for r in refs]
        return [(1, self._endpoints(self._name))]

    def _endpoints(self, service: str, skip: str | None = "default") -> list[StandInPod]:
        """Ready pods the Service selects, the way kube-proxy load-balances them."""
        response = self._api.get(f"/api/v1/namespaces/{self._namespace}/services/{service}")
        if response.status_code != 200:
            return []
        selector = response.json()["spec"].get("selector", {})
        skip_variant = self._skip_variant if skip == "default" else skip
        return [
            pod
            for pod in self._standin.ready_pods()
            if all(pod.labels.get(k) == v for k, v in selector.items())
            and pod.labels.get("coalmine.dev/variant") != skip_variant
        ]

    def _send(self, pod: StandInPod) -> None:
        row = [self._random.random() for _ in range(4)]
        variant = pod.labels.get("coalmine.dev/variant", "?")
        if variant == "canary":
            row[3] += self._canary_input_shift
        body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [row]}]}
        base = f"http://{pod.address}/v2/models/{self._model}"
        try:
            reply = self._http.post(f"{base}/infer", json=body)
            self.statuses[reply.status_code] += 1
            self.sent[variant] += 1
            if reply.status_code != 200:
                self.failed[variant] += 1
            if reply.status_code == 200:
                self.labels.add(reply.json()["parameters"]["receipt"], [truth_of(row)])
        except httpx.TransportError:
            self.statuses[0] += 1
            self.sent[variant] += 1
            self.dropped[variant] += 1  # a pod going away mid-request: counted, not fatal


@dataclass(frozen=True)
class Snapshot:
    at: float
    seq: int
    spans_both: bool | None  # Service selector covers the canary (None: no Service)
    canary_replicas: int | None
    route_weight: int | None  # canary backend weight on the HTTPRoute (gatewayAPI)
    phase: str | None
    weight: int | None
    step: int | None
    stable_revision: str | None
    canary_revision: str | None
    status: dict[str, Any]


class Recorder:
    """Polls the world every 100 ms and keeps every distinct snapshot in order."""

    def __init__(self, api: httpx.Client, namespace: str, name: str) -> None:
        self._api, self._namespace, self._name = api, namespace, name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._seq = itertools.count()
        self.snapshots: list[Snapshot] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def first(self, predicate: Callable[[Snapshot], bool], within: float = 0.0) -> Snapshot | None:
        """The first snapshot ``predicate`` holds for; waiting up to ``within`` seconds for one.
        A test that has just read the state it waits for from the API server can be ahead of
        this 100 ms poll: the operator scales the canary to 0 and writes ``Degraded`` 50 ms
        apart, so the scaled canary may not be recorded yet when the test sees Degraded."""
        deadline = time.monotonic() + within
        while True:
            found = next((s for s in list(self.snapshots) if predicate(s)), None)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def _run(self) -> None:
        last: tuple[Any, ...] | None = None
        while not self._stop.is_set():
            try:
                snap = self._snapshot()
            except httpx.HTTPError:
                snap = None
            if snap is not None:
                key = (
                    snap.spans_both, snap.canary_replicas, snap.route_weight,
                    snap.phase, snap.weight, snap.step,
                    snap.stable_revision, snap.canary_revision,
                )  # fmt: skip
                if key != last:
                    self.snapshots.append(snap)
                    last = key
            self._stop.wait(0.1)

    def _get(self, path: str) -> dict[str, Any] | None:
        response = self._api.get(path)
        return response.json() if response.status_code == 200 else None

    def _snapshot(self) -> Snapshot:
        ns = f"/namespaces/{self._namespace}"
        service = self._get(f"/api/v1{ns}/services/{self._name}")
        canary = self._get(f"/apis/apps/v1{ns}/deployments/{self._name}-canary")
        md = self._get(f"/apis/coalmine.dev/v1alpha1{ns}/modeldeployments/{self._name}") or {}
        route = self._get(f"/apis/gateway.networking.k8s.io/v1{ns}/httproutes/{self._name}")
        status = md.get("status", {})
        spans = None
        if service is not None:
            spans = "coalmine.dev/variant" not in service["spec"].get("selector", {})
        return Snapshot(
            at=time.monotonic(),
            seq=next(self._seq),
            spans_both=spans,
            canary_replicas=canary["spec"]["replicas"] if canary else None,
            route_weight=_canary_weight(route, f"{self._name}-canary"),
            phase=status.get("phase"),
            weight=status.get("weight"),
            step=status.get("currentStep"),
            stable_revision=(status.get("stable") or {}).get("revision"),
            canary_revision=(status.get("canary") or {}).get("revision"),
            status=status,
        )


def _canary_weight(route: dict[str, Any] | None, canary: str) -> int | None:
    if route is None:
        return None
    refs = [r for rule in route["spec"]["rules"] for r in rule["backendRefs"]]
    return next((int(r.get("weight", 1)) for r in refs if r["name"] == canary), None)
