"""ModelDeployments, client traffic and status waits for the operator scenarios."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from e2e.support.kube import Kube, eventually
from e2e.support.workloads import N_FEATURES

GROUP_VERSION = "coalmine.dev/v1alpha1"
FAST_ANALYSIS = {"interval": "2s", "window": "8s"}
CHECKS = [
    {"name": "error-rate", "errorRate": {"max": 0.05}},
    {"name": "latency-p99", "latency": {"quantile": 0.99, "maxSeconds": 1.0}},
]


@dataclass(frozen=True)
class Artifact:
    filename: str
    sha256: str


def write_models(directory: Path) -> dict[str, Artifact]:
    """`good` (label = x0 > 0.5) and `inverted` (trained on flipped labels: confidently
    wrong, with normal latency and no errors), saved with skops."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    rows = np.random.default_rng(0).random((80, N_FEATURES))
    labels = (rows[:, 0] > 0.5).astype(np.int64)
    models = {
        "good": LogisticRegression(C=100.0).fit(rows, labels),
        "inverted": LogisticRegression(C=100.0).fit(rows, 1 - labels),
    }
    directory.mkdir(parents=True, exist_ok=True)
    artifacts = {}
    for name, estimator in models.items():
        path = directory / f"{name}.skops"
        sio.dump(estimator, path)
        artifacts[name] = Artifact(path.name, hashlib.sha256(path.read_bytes()).hexdigest())
    return artifacts


def model_deployment(
    namespace: str,
    name: str,
    version: str,
    artifact: Artifact,
    base_url: str,
    *,
    env: dict[str, str] | None = None,
    checks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    model = {"name": name, "version": version, "uri": f"{base_url}/{artifact.filename}",
             "format": "skops", "sha256": artifact.sha256}  # fmt: skip
    spec = {
        "model": model,
        "runtime": {
            "replicas": 2,
            "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
        },
        "canary": {
            "steps": [{"weight": 20, "pause": "6s"}, {"weight": 50, "pause": "6s"}],
            "analysis": {**FAST_ANALYSIS, "checks": checks or CHECKS},
            "policy": {
                "failureLimit": 2,
                "minSamples": 10,
                "inconclusiveLimit": "30s",
                "onInconclusive": "pause",
            },
            "progressDeadline": "180s",
        },
        "rollback": {"scaleDownDelay": "2s"},
    }
    return {"apiVersion": GROUP_VERSION, "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}  # fmt: skip


def md_status(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    status: dict[str, Any] = (
        kube.get(GROUP_VERSION, "ModelDeployment", name, namespace).get("status") or {}
    )
    return status


def wait_status(
    kube: Kube, namespace: str, name: str, check: Callable[[dict[str, Any]], bool],
    timeout: float, what: str,
) -> dict[str, Any]:  # fmt: skip
    def probe() -> dict[str, Any] | None:
        status = md_status(kube, namespace, name)
        return status if check(status) else None

    try:
        return eventually(probe, timeout=timeout, what=what)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\nlast status: {md_status(kube, namespace, name)}") from exc


@dataclass
class SteadyTraffic:
    """A client sending predictions to the Service at a steady rate, each followed by its true
    label on the same connection (so the feedback reaches the pod that made the prediction)."""

    service_url: str  # http://<ClusterIP>:<port>
    model: str
    rps: float = 10.0
    statuses: Counter[int] = field(default_factory=Counter)
    by_version: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # what each failed request saw, for reports
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._random = random.Random(7)

    def start(self) -> SteadyTraffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

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
            with httpx.Client(timeout=5.0) as http:  # one connection: one pod
                reply = http.post(f"{base}/infer", json=body)
                self.statuses[reply.status_code] += 1
                if reply.status_code != 200:
                    self.errors.append(
                        f"{time.strftime('%X')} HTTP {reply.status_code}: {reply.text[:200]}"
                    )
                if reply.status_code == 200:
                    answer = reply.json()
                    self.by_version[str(answer.get("model_version"))] += 1
                    truth = {"id": answer["id"], "truth": [int(row[0] > 0.5)]}
                    http.post(f"{base}/feedback", json=truth)
        except httpx.TransportError as exc:
            self.statuses[0] += 1
            self.errors.append(f"{time.strftime('%X')} {type(exc).__name__}: {exc}")

    @property
    def failures(self) -> int:
        return sum(count for status, count in self.statuses.items() if status != 200)
