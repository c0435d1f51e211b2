"""B9: what the operator costs with many ModelDeployments (docs/benchmarks.md, B9).

    .venv/bin/python -m bench.scale                      # 500 objects, 50 canaries, 60 s windows
    .venv/bin/python -m bench.scale --objects 50 --window 30   # the quick size

On the real API server (etcd, kube-apiserver with an audit log of service accounts' requests,
kube-controller-manager: ``e2e.devcluster.controlplane``) and a real Prometheus. ``objects``
ModelDeployments get a stable revision each (one replica; ``bench.scalenode`` marks the pods
Ready and exports their metrics), and once all are Healthy a steady window is measured; then
``canaries`` of them get a new version and, once those are all analysing (a long pause: they
stay there), a canary window. In both, beside the operator, ``bench/bare_kopf.py`` watches the
same objects: CPU is reported as a ratio to it. Figures are printed as JSON (``--json`` writes
them to a file too).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import scalemeasure as m
from bench import tickstages
from bench.scalenode import ReadyNode
from e2e.devcluster import PRODUCT_PYTHONPATH, REPO_ROOT
from e2e.devcluster.binaries import kube_bin_dir
from e2e.devcluster.controlplane import ControlPlane
from e2e.devcluster.process import ManagedProcess, free_port
from e2e.devcluster.prometheus import PrometheusServer
from e2e.devcluster.sandbox import (
    MD_PATH,
    OPERATOR_ROLE,
    apply_model_deployment,
    install_cluster_objects,
)

NAMESPACE = "scale"
SERVICE_FLAG = "--service-cluster-ip-range="
SERVICE_RANGE = f"{SERVICE_FLAG}10.0.0.0/20"  # first address 10.0.0.1 still: the PKI's SAN
OPERATOR_SA, PEER_SA = "coalmine-operator", "bare-kopf"
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  # Every request of a service account (the two operators run as such), nothing else.
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"""


class AuditedControlPlane(ControlPlane):
    """The dev control plane with every service account's request in ``audit.log``."""

    @property
    def audit_path(self) -> Path:
        return self.workdir / "bench-audit" / "audit.log"

    def _launch(self, name: str, argv: list[str]) -> ManagedProcess:
        if name == "kube-apiserver":
            # A Service per object and one per canary: more than the dev /24 holds.
            argv = [SERVICE_RANGE if a.startswith(SERVICE_FLAG) else a for a in argv]
            policy = self.audit_path.parent / "policy.yaml"
            policy.parent.mkdir(parents=True, exist_ok=True)
            policy.write_text(AUDIT_POLICY)
            argv = [
                *argv, f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_path}",
                "--audit-log-format=json", "--audit-log-maxsize=2000", "--audit-log-mode=batch",
            ]  # fmt: skip
        return super()._launch(name, argv)


def spec(name: str, version: str, prometheus: str) -> dict[str, Any]:
    """One replica, the client Service router, two checks, and a step whose pause outlasts the
    bench: a canary stays in analysis, queried every ``interval``, for the whole window."""
    return {
        "model": {
            "name": name,
            "version": version,
            "format": "onnx",
            "sha256": "0" * 64,
            "uri": f"https://models.example/{name}/{version}.onnx",
        },
        "traffic": {"router": "replicas"},
        "runtime": {"replicas": 1},
        "canary": {
            "steps": [{"weight": 50, "pause": "2h"}],
            "analysis": {
                "interval": "10s",
                "window": "30s",
                "prometheus": {"address": prometheus, "timeout": "5s"},
                "checks": [
                    {"name": "error-rate", "errorRate": {"max": 0.05}},
                    {"name": "latency-p99", "latency": {"quantile": 0.99, "maxSeconds": 1.0}},
                ],
            },
            "policy": {"minSamples": 10, "onInconclusive": "pause", "inconclusiveLimit": "10m"},
            "progressDeadline": "30m",
        },
    }


@dataclass
class Window:
    """One measured window; rates are per minute, ``per_object`` per ModelDeployment."""

    name: str
    seconds: float
    objects: int
    steady_objects: int
    operator_cpu_cores: float
    peer_cpu_cores: float
    cpu_ratio: float
    operator_rss_mb: float
    peer_rss_mb: float
    api_requests_per_object_min: float
    api_reads_per_object_min: float
    api_writes_per_object_min: float
    api_reads_per_steady_object_min: float
    writes_on_steady_objects: int
    events_on_steady_objects: int
    peer_api_requests_per_min: float
    prometheus_queries_per_object_min: float
    prometheus_queries_per_canary_min: float
    tick_lag_p50_s: float
    tick_lag_p99_s: float
    ticks_per_min: float
    log_lines_per_min: float
    operator_requests: dict[str, int]
    stages_ms_per_tick: dict[str, Any] | None = None
    """With ``--stages``: each stage's CPU per tick (``bench.tickstages``)."""


class Bench:
    """The world of one run; ``measure`` returns one window's figures."""

    def __init__(self, workdir: Path, objects: int, canaries: int, stages: bool = False) -> None:
        self.workdir, self.objects, self.canaries = workdir, objects, canaries
        self.stages = workdir / "stages.json" if stages else None
        self.names = [f"m{i:04d}" for i in range(objects)]
        self.plane = AuditedControlPlane(workdir / "plane", kube_bin_dir())
        self.prometheus = PrometheusServer(workdir / "prometheus")
        self.metrics_port = free_port()
        self.operator: ManagedProcess | None = None
        self.peer: ManagedProcess | None = None

    @contextmanager
    def running(self) -> Iterator[Bench]:
        with ExitStack() as stack:
            self.plane.start()
            stack.callback(self.plane.stop)
            self.prometheus.start()
            stack.callback(self.prometheus.close)
            self.api = stack.enter_context(self.plane.api_client())
            install_cluster_objects(self.api)
            self.api.post("/api/v1/namespaces", json=_namespace()).raise_for_status()
            self.node = ReadyNode(self.api, NAMESPACE)
            self.node.start()
            stack.callback(self.node.stop)
            self.prometheus.set_targets(
                [self.node.target], job="pods", labels={"namespace": NAMESPACE}
            )
            self.operator = self._start(OPERATOR_SA, self._operator_argv())
            stack.callback(self.operator.stop)
            self.peer = self._start(PEER_SA, self._peer_argv())
            stack.callback(self.peer.stop)
            yield self

    def _start(self, account: str, argv: list[str]) -> ManagedProcess:
        kubeconfig = self.plane.kubeconfig_for_service_account(NAMESPACE, account)
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"bench-{account}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                "name": OPERATOR_ROLE,
            },
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}],
        }  # fmt: skip
        self.api.post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", json=binding)
        env = {"KUBECONFIG": str(kubeconfig), "PYTHONPATH": PRODUCT_PYTHONPATH}
        full = ["/usr/bin/env", *(f"{k}={v}" for k, v in env.items()), *argv]
        process = ManagedProcess(account, full, self.workdir / f"{account}.log", cwd=REPO_ROOT)
        process.start()
        return process

    def _operator_argv(self) -> list[str]:
        env = {
            "COALMINE_DEFAULT_PROMETHEUS_ADDRESS": self.prometheus.url,
            "COALMINE_DEFAULT_SERVING_IMAGE": "coalmine/serving:bench",
            "COALMINE_METRICS_PORT": str(self.metrics_port),
            "COALMINE_LIVENESS_PORT": "0",
            # One process, as the bare kopf peer: its account has no Lease rights, and with
            # election on it would wait as a standby forever (B9 was measured without it).
            "COALMINE_LEADER_ELECTION": "false",
        }
        entry = ["coalmine.cli.operator"]
        if self.stages is not None:  # the same operator, its stages timed
            entry = ["bench.tickstages", str(self.stages)]
        return [
            *(f"{k}={v}" for k, v in env.items()),
            sys.executable, "-m", *entry, "--namespace", NAMESPACE,
        ]  # fmt: skip

    def _peer_argv(self) -> list[str]:
        kopf = str(Path(sys.executable).parent / "kopf")
        script = str(REPO_ROOT / "bench" / "bare_kopf.py")
        return [kopf, "run", "--standalone", "--namespace", NAMESPACE, script]

    # --- the objects ---

    def create_all(self) -> None:
        for name in self.names:
            apply_model_deployment(self.api, NAMESPACE, name, spec(name, "v1", self.prometheus.url))

    def start_canaries(self) -> None:
        for name in self.names[: self.canaries]:
            apply_model_deployment(self.api, NAMESPACE, name, spec(name, "v2", self.prometheus.url))

    def phases(self) -> dict[str, dict[str, Any]]:
        try:
            items = self.api.get(MD_PATH.format(ns=NAMESPACE)).json()["items"]
        except httpx.TimeoutException:  # a loaded machine: the wait's deadline decides
            return {}
        return {md["metadata"]["name"]: md.get("status") or {} for md in items}

    def wait(
        self, check: Callable[[dict[str, dict[str, Any]]], bool], timeout: float, what: str
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.operator is not None
            if not self.operator.running:
                raise RuntimeError(f"the operator exited:\n{self.operator.log_tail(4000)}")
            statuses = self.phases()
            if check(statuses):
                return
            if time.monotonic() > deadline:
                counts: dict[str, int] = {}
                for status in statuses.values():
                    counts[str(status.get("phase"))] = counts.get(str(status.get("phase")), 0) + 1
                raise TimeoutError(f"{what}: not within {timeout:.0f}s; phases {counts}")
            time.sleep(2)

    def all_healthy(self, statuses: dict[str, dict[str, Any]]) -> bool:
        healthy = [n for n, s in statuses.items() if s.get("phase") == "Healthy"]
        return len(healthy) == self.objects

    def canaries_analysing(self, statuses: dict[str, dict[str, Any]]) -> bool:
        """Every canary at its step with its checks measured (a verdict in status)."""
        return all(
            (statuses.get(name) or {}).get("canary", {}).get("version") == "v2"
            and _analysed(statuses[name])
            for name in self.names[: self.canaries]
        )

    # --- measuring ---

    def measure(self, name: str, seconds: float) -> Window:
        assert self.operator is not None and self.peer is not None
        assert self.operator.pid is not None and self.peer.pid is not None
        audit = m.AuditLog(self.plane.audit_path)
        op_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        prom_url = f"{self.prometheus.url}/metrics"
        mark, lines = audit.mark(), m.count_lines(self.operator.log_path)
        op0, peer0 = m.proc_sample(self.operator.pid), m.proc_sample(self.peer.pid)
        ops0, prom0 = m.scrape(op_url), m.scrape(prom_url)
        stages0 = self._stages()
        started, began = time.monotonic(), _now_rfc3339()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        op1, peer1 = m.proc_sample(self.operator.pid), m.proc_sample(self.peer.pid)
        ops1, prom1 = m.scrape(op_url), m.scrape(prom_url)
        stages1 = self._stages()
        lines = m.count_lines(self.operator.log_path) - lines
        time.sleep(2)  # the audit backend writes in batches
        counts = audit.since(mark)
        window = self._window(name, elapsed, counts, (op0, op1), (peer0, peer1), (ops0, ops1),
                              (prom0, prom1), lines, began)  # fmt: skip
        if stages0 is not None and stages1 is not None:
            window.stages_ms_per_tick = tickstages.per_tick(stages0, stages1)
        return window

    def _stages(self) -> dict[str, Any] | None:
        """The operator's stage totals as last written (every 5 s), with ``--stages``."""
        if self.stages is None or not self.stages.exists():
            return None
        found: dict[str, Any] = json.loads(self.stages.read_text())
        return found

    def _window(
        self,
        name: str,
        elapsed: float,
        counts: dict[str, m.AuditCounts],
        op: tuple[m.ProcSample, m.ProcSample],
        peer: tuple[m.ProcSample, m.ProcSample],
        opmetrics: tuple[dict[str, float], dict[str, float]],
        prom: tuple[dict[str, float], dict[str, float]],
        lines: int,
        began: str,
    ) -> Window:
        minutes = elapsed / 60
        ours = counts.get(f"system:serviceaccount:{NAMESPACE}:{OPERATOR_SA}", m.AuditCounts())
        theirs = counts.get(f"system:serviceaccount:{NAMESPACE}:{PEER_SA}", m.AuditCounts())
        canarying = set(self.names[: self.canaries]) if name == "canary" else set()
        steady = [n for n in self.names if n not in canarying]
        steady_reads = sum(ours.reads_by_object[n] for n in steady)
        steady_writes = sum(ours.writes_by_object[n] for n in steady)
        events = self._events_since(began, set(steady))
        op_cpu = (op[1].cpu_seconds - op[0].cpu_seconds) / elapsed
        peer_cpu = (peer[1].cpu_seconds - peer[0].cpu_seconds) / elapsed
        lag = m.lag_buckets(*opmetrics)
        ticks = m.delta(*opmetrics, "coalmine_ticks_total{").get("coalmine_ticks_total{}", 0.0)
        queries = m.prometheus_queries(*prom)
        per = self.objects * minutes
        return Window(
            name=name, seconds=round(elapsed, 1), objects=self.objects,
            steady_objects=len(steady),
            operator_cpu_cores=round(op_cpu, 3), peer_cpu_cores=round(peer_cpu, 3),
            cpu_ratio=round(op_cpu / peer_cpu, 2) if peer_cpu > 0 else math.inf,
            operator_rss_mb=round(op[1].rss_bytes / 2**20, 1),
            peer_rss_mb=round(peer[1].rss_bytes / 2**20, 1),
            api_requests_per_object_min=round((ours.reads + ours.writes) / per, 3),
            api_reads_per_object_min=round(ours.reads / per, 3),
            api_writes_per_object_min=round(ours.writes / per, 3),
            api_reads_per_steady_object_min=round(steady_reads / (len(steady) * minutes), 3),
            writes_on_steady_objects=steady_writes,
            events_on_steady_objects=events,
            peer_api_requests_per_min=round((theirs.reads + theirs.writes) / minutes, 1),
            prometheus_queries_per_object_min=round(queries / per, 3),
            prometheus_queries_per_canary_min=(
                round(queries / (len(canarying) * minutes), 2) if canarying else 0.0
            ),
            tick_lag_p50_s=round(m.histogram_quantile(lag, 0.5), 3),
            tick_lag_p99_s=round(m.histogram_quantile(lag, 0.99), 3),
            ticks_per_min=round(ticks / minutes, 1),
            log_lines_per_min=round(lines / minutes, 1),
            operator_requests={f"{v} {r}": n for (v, r), n in sorted(ours.by_verb_resource.items())},  # noqa: E501
        )  # fmt: skip

    def _events_since(self, began: str, steady: set[str]) -> int:
        items = self.api.get(f"/api/v1/namespaces/{NAMESPACE}/events").json()["items"]
        return sum(
            1
            for e in items
            if e["involvedObject"].get("name") in steady
            and (e.get("lastTimestamp") or e.get("eventTime") or "") >= began
            and e.get("source", {}).get("component") != "kopf"
        )


def _analysed(status: dict[str, Any]) -> bool:
    checks = (status.get("analysis") or {}).get("checks") or []
    return bool(checks) and all(c.get("value") is not None for c in checks)


def _namespace() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}


def _now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def run(
    objects: int, canaries: int, window: float, settle: float, workdir: Path,
    steady_window: float | None = None, stages: bool = False,
) -> list[Window]:  # fmt: skip
    bench = Bench(workdir, objects, canaries, stages)
    with bench.running():
        began = time.monotonic()
        bench.create_all()
        bench.wait(bench.all_healthy, 600 + 6.0 * objects, f"{objects} ModelDeployments Healthy")
        print(f"all {objects} Healthy after {time.monotonic() - began:.0f}s", file=sys.stderr)
        time.sleep(settle)
        steady = bench.measure("steady", steady_window or window)
        print(json.dumps(asdict(steady)), file=sys.stderr)
        bench.start_canaries()
        bench.wait(bench.canaries_analysing, 300 + 6.0 * canaries, f"{canaries} canaries analysed")
        time.sleep(settle)
        canary = bench.measure("canary", window)
        return [steady, canary]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=500)
    parser.add_argument("--canaries", type=int, default=None, help="default: a tenth of --objects")
    parser.add_argument("--window", type=float, default=60.0, help="seconds per measured window")
    parser.add_argument(
        "--steady-window", type=float, default=None,
        help="seconds of the steady window (default: --window); over 300 it sees every steady "
        "object's own tick, which a Healthy object asks for 300 s after its last",
    )  # fmt: skip
    parser.add_argument("--settle", type=float, default=15.0, help="seconds before each window")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--logs", type=Path, default=None, help="keep the operators' logs here")
    parser.add_argument(
        "--stages", action="store_true", help="time each stage of a tick (bench.tickstages)"
    )
    args = parser.parse_args(argv)
    # SIGTERM unwinds like an exception, so the control plane and operators are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    canaries = args.canaries if args.canaries is not None else max(1, args.objects // 10)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        try:
            windows = run(
                args.objects, canaries, args.window, args.settle, Path(tmp), args.steady_window,
                args.stages,
            )  # fmt: skip
        finally:
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in Path(tmp).glob("*.log"):
                    shutil.copy(log, args.logs / log.name)
    text = json.dumps([asdict(w) for w in windows], indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
