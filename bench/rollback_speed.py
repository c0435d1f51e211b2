"""Bench B8: how fast a bad canary is rolled back on real pods, against the analytic floor.

On the real single-node cluster (e2e/devcluster, docs/e2e.md), with the operator installed by
helm and a pod-discovering Prometheus scraping every second (``InstalledProduct``), client
threads send predictions through the model's Service, each on a fresh connection (kube-proxy
balances connections), recording every answer: when sent and received, status, the version
that answered. Then:

- **bad runs**: a canary that fails ``--fault`` of its requests (the server's injected fault)
  is applied; from the first bad response a client sees to the first request after which no
  request reaches the canary, divided by the floor of ``bench.rollback_timeline`` (scrape
  interval + what the sequential error-rate test needs at the observed rates + the router's
  propagation, measured on the same run from the Service's selector change);
- **healthy runs**: a good canary under the same spec and traffic must be promoted, never
  rolled back; 0 false rollbacks in 20 runs bounds the rate at 16% (95%).

    nice .venv/bin/python -m bench.rollback_speed                        # 5 bad, 20 healthy
    nice .venv/bin/python -m bench.rollback_speed --bad 1 --healthy 1    # smoke, ~5 minutes

It takes the machine-wide node lock itself (``/tmp/coalmine-e2e.lock``, as ``/work/wt/e2etest``)
when it starts the local cluster; set COALMINE_E2E_KUBECONFIG and friends (docs/e2e.md) to
run it on another cluster instead. Needs root, like the e2e tier.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, watch

from bench.rollback_timeline import (
    Answer,
    back_to_stable_after,
    decide_seconds,
    extract_timeline,
    floor_seconds,
    none_in,
    realized_decide_seconds,
)
from coalmine.manifests.labels import LABEL_VARIANT
from e2e.devcluster.images import OPERATOR, SERVING
from e2e.devcluster.product import InstalledProduct
from e2e.devcluster.tinymodels import N_FEATURES
from e2e.support.clusters import ClusterUnderTest, start_cluster
from e2e.support.kube import Kube
from e2e.support.rollout import NAME, RESTRICTED, World, md_status, wait_status

NODE_LOCK = Path("/tmp/coalmine-e2e.lock")
SCRAPE_SECONDS = 1.0  # e2e.devcluster.sdprometheus: global scrape_interval "1s"
MIN_SAMPLES = 10
FAULT_ENV = "COALMINE_SERVING_FAULT_ERROR_RATE"
# The sequential error-rate test alone, at its defaults (confidence 0.975, floor 0.01): the
# floor's "decide" is this test's (bench.rollback_timeline.decide_seconds).
CHECK = {"name": "error-rate", "errorRate": {"vsStable": {}}}


def md_kwargs(pause: str) -> dict[str, Any]:
    """One step at 50% (one canary pod beside one stable: fewer pod starts per run on the
    shared machine), looked at every second; a single failing look rolls back (failureLimit
    1), so the floor holds no policy delay."""
    return {
        "replicas": 1,
        "checks": [CHECK],
        "steps": [{"weight": 50, "pause": pause}],
        "analysis": {"interval": "1s", "window": "2s"},
        "policy": {"failureLimit": 1, "minSamples": MIN_SAMPLES, "inconclusiveLimit": "60s"},
    }


@dataclass
class Clients:
    """Client threads through the Service, one fresh connection per request."""

    url: str
    clients: int = 4
    rps: float = 10.0  # per client, at most: one request at a time
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=5.0, limits=httpx.Limits(max_keepalive_connections=0))
        self._threads = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.clients)
        ]

    def start(self) -> Clients:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._http.close()

    def take(self) -> list[Answer]:
        """The answers so far, forgetting them."""
        with self._lock:
            taken, self.answers = self.answers, []
        return taken

    def _run(self) -> None:
        rows = random.Random(threading.get_ident())
        while not self._stop.is_set():
            self._one([rows.random() for _ in range(N_FEATURES)])
            self._stop.wait(1.0 / self.rps)

    def _one(self, row: list[float]) -> None:
        body = {"inputs": [{"name": "x", "shape": [1, N_FEATURES], "datatype": "FP64",
                            "data": [row]}]}  # fmt: skip
        sent = time.time()
        try:
            reply = self._http.post(f"{self.url}/v2/models/{NAME}/infer", json=body)
        except httpx.TransportError:
            self._add(Answer(sent, time.time(), 0, None))
            return
        received = time.time()
        version = reply.json().get("model_version") if reply.status_code == 200 else None
        fault = reply.status_code == 500 and "injected fault" in reply.text
        self._add(Answer(sent, received, reply.status_code, version, fault))

    def _add(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)


class RouteWatch:
    """Watches the client Service (a watch stream, so a change is seen within milliseconds,
    not a poll later): when its selector names stable only (weight 0, what a rollback writes
    first) and when it spans both variants."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        self._core = client.CoreV1Api(Kube(kubeconfig).api_client)  # its own client: a thread
        self._namespace = namespace
        self.changes: list[tuple[float, bool]] = []  # (seen at, stable only)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RouteWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        last: bool | None = None
        while not self._stop.is_set():
            stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                self._core.list_namespaced_service, self._namespace,
                field_selector=f"metadata.name={NAME}", timeout_seconds=2,
            )  # fmt: skip
            for event in stream:
                stable_only = LABEL_VARIANT in (event["object"].spec.selector or {})
                if stable_only != last:
                    self.changes.append((time.time(), stable_only))
                    last = stable_only

    def back_to_stable_after(self, since: float) -> float:
        """When the selector, having spanned both variants at or after ``since``, named
        stable only."""
        return back_to_stable_after(self.changes, since)


@contextmanager
def node_lock() -> Iterator[None]:
    with NODE_LOCK.open("a") as handle:
        print(f"waiting for the node lock {NODE_LOCK} ...", flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)
        print(f"got the node at {time.strftime('%H:%M:%S', time.gmtime())} UTC", flush=True)
        yield


def _when(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else None


def bad_run(
    world: World, ns: str, version: str, fault: float, pause: str, bench: Bench
) -> dict[str, Any]:
    bench.clients.take()
    applied = time.time()
    world.apply_version(ns, version, env={FAULT_ENV: str(fault)}, **md_kwargs(pause))
    done = wait_status(
        world.kube, ns, NAME,
        lambda s: (s.get("rollback") or {}).get("version") == version
        and bool((s.get("rollback") or {}).get("completedAt")),
        240, f"{version} to be rolled back",
    )  # fmt: skip
    time.sleep(2)  # traffic after the rollback: proves every later request went to stable
    answers = bench.clients.take()
    route = bench.watch.back_to_stable_after(applied)
    timeline = extract_timeline(answers, version, route)
    decide = decide_seconds(timeline.rates, min_samples=MIN_SAMPLES)
    propagation = timeline.back_on_stable - route
    floor = floor_seconds(SCRAPE_SECONDS, decide, propagation)
    record = done["rollback"]
    started = _when(record.get("startedAt"))
    return {
        "version": version,
        "fault": fault,
        "seconds": round(timeline.seconds, 3),
        "floor": round(floor, 3),
        "ratio": round(timeline.seconds / floor, 3),
        "decide_floor": decide,
        "decide_realized": realized_decide_seconds(
            answers, version, timeline.first_bad, min_samples=MIN_SAMPLES
        ),
        "propagation": round(propagation, 3),
        "decision_after_first_bad": round(started - timeline.first_bad, 3) if started else None,
        "route_after_first_bad": round(route - timeline.first_bad, 3),
        "rates": asdict(timeline.rates),
        "canary_answers": timeline.canary_answers,
        "answers_after": timeline.answers_after,
        "check": record.get("check"),
        "samples": record.get("samples"),
        "reason": record.get("reason"),
    }


def healthy_run(world: World, ns: str, version: str, pause: str, bench: Bench) -> dict[str, Any]:
    bench.clients.take()
    world.apply_version(ns, version, **md_kwargs(pause))

    def ended(status: dict[str, Any]) -> bool:
        rolled = (status.get("rollback") or {}).get("version") == version
        promoted = (status.get("stable") or {}).get("version") == version
        return rolled or (promoted and status.get("phase") == "Healthy")

    done = wait_status(world.kube, ns, NAME, ended, 300, f"{version} to end")
    answers = bench.clients.take()
    rolled_back = (done.get("rollback") or {}).get("version") == version
    return {
        "version": version,
        "rolled_back": rolled_back,
        "reason": (done.get("rollback") or {}).get("reason") if rolled_back else None,
        "requests": len(answers),
        "failed_requests": sum(a.bad for a in answers),
    }


@dataclass
class Bench:
    clients: Clients
    watch: RouteWatch


def report(bad: list[dict[str, Any]], healthy: list[dict[str, Any]]) -> str:
    lines = [
        "| run | fault | first bad → all on stable | floor (scrape + decide + propagation) "
        "| ratio | decided after first bad | route after first bad | canary req/s, errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in bad:
        rates = row["rates"]
        lines.append(
            f"| {row['version']} | {row['fault']} | {row['seconds']:.2f}s "
            f"| {row['floor']:.2f}s = {SCRAPE_SECONDS:g} + {row['decide_floor']:.2f} "
            f"+ {row['propagation']:.2f} | **{row['ratio']:.2f}** "
            f"| {row['decision_after_first_bad']}s | {row['route_after_first_bad']:.2f}s "
            f"| {rates['canary_rps']:.1f}, {rates['canary_error_rate']:.3f} |"
        )
    if bad:
        ratios = [row["ratio"] for row in bad]
        lines.append(f"\nmedian ratio {statistics.median(ratios):.2f}, max {max(ratios):.2f}")
    if healthy:
        false = sum(row["rolled_back"] for row in healthy)
        wilson, exact = none_in(len(healthy))
        lines.append(
            f"healthy: {false} rolled back of {len(healthy)} (promoted {len(healthy) - false}); "
            f"0/{len(healthy)}: 95% upper end {wilson:.1%} (Wilson), {exact:.1%} (exact); "
            f"failed client requests {sum(r['failed_requests'] for r in healthy)} "
            f"of {sum(r['requests'] for r in healthy)}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace, cluster: ClusterUnderTest, workdir: Path) -> None:
    kube = Kube(cluster.kubeconfig)
    assert cluster.host_address, "pods must reach this machine (docs/e2e.md)"
    (workdir / "product").mkdir(parents=True)
    product = InstalledProduct(
        cluster.kubeconfig, workdir / "product", cluster.image(OPERATOR), cluster.image(SERVING),
        host_address=cluster.host_address,
    )  # fmt: skip
    product.start()
    try:
        world = World(kube, cluster.kubeconfig, product)
        ns = kube.create_namespace("bench", labels=RESTRICTED)
        world.apply_version(ns, "v1", **md_kwargs(args.pause))
        wait_status(kube, ns, NAME, lambda s: s.get("phase") == "Healthy", 300, "v1 Healthy")
        bench = Bench(
            Clients(kube.service_url(ns, NAME), args.clients, args.rps).start(),
            RouteWatch(cluster.kubeconfig, ns).start(),
        )
        bad: list[dict[str, Any]] = []
        healthy: list[dict[str, Any]] = []
        try:
            for n in range(args.bad):
                bad.append(bad_run(world, ns, f"bad{n}", args.fault, args.pause, bench))
                print(json.dumps(bad[-1]), flush=True)
            for n in range(args.healthy):
                healthy.append(healthy_run(world, ns, f"good{n}", args.pause, bench))
                print(json.dumps(healthy[-1]), flush=True)
        finally:
            bench.clients.stop()
            bench.watch.stop()
            if args.json:
                Path(args.json).write_text(json.dumps({"bad": bad, "healthy": healthy}, indent=1))
            print(report(bad, healthy), flush=True)
            print(f"last status: {md_status(kube, ns, NAME).get('phase')}")
    finally:
        product.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bad", type=int, default=5, help="bad canaries to roll back")
    parser.add_argument("--healthy", type=int, default=20, help="good canaries to promote")
    parser.add_argument("--fault", type=float, default=0.2, help="the bad canary's error share")
    parser.add_argument("--pause", default="20s", help="the one step's pause")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rps", type=float, default=10.0, help="per client, at most")
    parser.add_argument("--json", help="write every run's figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="coalmine-b8-") as tmp:
        workdir = Path(tmp)
        with node_lock():
            cluster = start_cluster(workdir / "cluster")
            try:
                run(args, cluster, workdir)
            finally:
                if cluster.local is not None:
                    cluster.local.stop()


if __name__ == "__main__":
    main()
