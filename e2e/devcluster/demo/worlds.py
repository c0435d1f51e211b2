"""The two clusters the demo can tell its story on, behind one small interface.

``NodeWorld``     real pods: a single-node cluster built on this machine (kubelet, containerd,
                  kube-proxy, CNI bridge), the operator installed by `helm install` from the
                  images our Dockerfiles build, client traffic through a Service's ClusterIP.
                  Needs root and the parts `e2e/cluster/node-deps.sh` installs.
``StandInWorld``  the integration tier's world: the real control plane and Prometheus with a
                  kubelet stand-in that runs each pod's server as a local process.

``choose`` picks one: the node when this machine can run it, else the stand-in, and says why.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import httpx

from e2e.devcluster.binaries import kube_bin_dir
from e2e.devcluster.cluster import LocalCluster
from e2e.devcluster.controlplane import ControlPlane
from e2e.devcluster.demo.view import (
    WHAT_IS_REAL_NODE,
    WHAT_IS_REAL_STANDIN,
    ClientCounts,
    LabelCounts,
)
from e2e.devcluster.images import OPERATOR, SERVING
from e2e.devcluster.labels import LabelPipeline
from e2e.devcluster.nodeconfig import CNI_BIN_DIR
from e2e.devcluster.process import wait_until
from e2e.devcluster.product import OPERATOR_NAMESPACE, InstalledProduct
from e2e.devcluster.prometheus import PrometheusServer
from e2e.devcluster.sandbox import (
    Sandbox,
    apply_model_deployment,
    install_cluster_objects,
    model_deployment_events,
    read_model_deployment,
)
from e2e.devcluster.sdprometheus import find_sd_prometheus
from e2e.devcluster.servicetraffic import NO_REPLY, SteadyTraffic
from e2e.devcluster.tinymodels import make_models

NAMESPACE = "coalmine-demo"
NAME = "iris"
Say = Callable[[str], None]


class World(Protocol):
    intro: str
    stage_timeout: float  # seconds one act of the story may take

    def start(self, say: Say) -> None: ...
    def stop(self) -> None: ...
    def model(self, version: str, artifact: str = "good") -> dict[str, Any]: ...
    def prometheus_for_operator(self) -> str: ...
    def apply(self, spec: dict[str, Any]) -> None: ...
    def md(self) -> dict[str, Any]: ...
    def events(self) -> list[dict[str, Any]]: ...
    def operator_failure(self) -> str | None: ...
    def start_traffic(self) -> None: ...
    def stop_traffic(self) -> None: ...
    def client_counts(self) -> ClientCounts: ...
    def label_counts(self) -> LabelCounts: ...
    def diagnostics(self) -> str: ...


def node_problems() -> list[str]:
    """Why this machine cannot run the real-node cluster now (empty: it can)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root (the node needs a bridge, iptables rules and cgroups)")
    tools = ("containerd", "runc", "buildah", "debootstrap", "iptables", "conntrack")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not Path(CNI_BIN_DIR, "bridge").is_file():
        missing.append("the CNI plugins")
    try:
        find_sd_prometheus()
    except FileNotFoundError:
        missing.append("Prometheus with Kubernetes discovery")
    if missing:
        problems.append(f"missing {', '.join(missing)} (e2e/cluster/node-deps.sh installs them)")
    return problems


def choose(mode: str, root: Path, say: Say) -> World:
    """``node``/``standin`` as asked; ``auto``: the node when nothing stops it."""
    if mode == "auto":
        problems = node_problems()
        mode = "standin" if problems else "node"
        if problems:
            say("real-node cluster not available here: " + "; ".join(problems))
            say("using the kubelet stand-in instead.\n")
    return NodeWorld(root) if mode == "node" else StandInWorld(root)


class StandInWorld:
    intro = WHAT_IS_REAL_STANDIN
    stage_timeout = 150.0

    def __init__(self, root: Path) -> None:
        self.root = root
        self.models = make_models(root / "models")
        self.plane: Any = None
        self.prometheus: Any = None
        self.sandbox: Any = None

    def start(self, say: Say) -> None:
        say("starting etcd, kube-apiserver, kube-controller-manager and Prometheus ...")
        self.plane = ControlPlane(self.root / "control-plane", kube_bin_dir())
        self.plane.start()
        self.prometheus = PrometheusServer(self.root / "prometheus")
        self.prometheus.start()
        with self.plane.api_client() as api:
            install_cluster_objects(api)
        self.sandbox = Sandbox(self.plane, self.prometheus, self.root / "sandbox", NAMESPACE)
        self.sandbox.setup()
        say("operator running as its own process, under its own ServiceAccount")

    def stop(self) -> None:
        parts = [self.sandbox and self.sandbox.teardown, self.prometheus and self.prometheus.close,
                 self.plane and self.plane.stop]  # fmt: skip
        _stop_each([part for part in parts if part])

    def model(self, version: str, artifact: str = "good") -> dict[str, Any]:
        """``artifact``: good, inverted or shifted (e2e.devcluster.tinymodels)."""
        return self.models.model(version, getattr(self.models, artifact))

    def prometheus_for_operator(self) -> str:
        return str(self.prometheus.url)

    def apply(self, spec: dict[str, Any]) -> None:
        self.sandbox.apply(spec)

    def md(self) -> dict[str, Any]:
        return dict(self.sandbox.md())

    def events(self) -> list[dict[str, Any]]:
        return list(self.sandbox.events())

    def operator_failure(self) -> str | None:
        operator = self.sandbox.operator
        return "the operator exited" if operator is not None and not operator.running else None

    def start_traffic(self) -> None:
        self.sandbox.start_traffic()

    def stop_traffic(self) -> None:
        if self.sandbox.traffic is not None:
            self.sandbox.traffic.stop()

    def client_counts(self) -> ClientCounts:
        traffic = self.sandbox.traffic
        if traffic is None:
            return ClientCounts()
        return ClientCounts(traffic.sent.copy(), traffic.failed.copy(), traffic.dropped.copy())

    def label_counts(self) -> LabelCounts:
        traffic = self.sandbox.traffic
        return label_counts(traffic.labels) if traffic is not None else LabelCounts()

    def diagnostics(self) -> str:
        operator = self.sandbox.operator if self.sandbox else None
        return f"operator log (tail):\n{operator.log_tail(3000)}" if operator else ""


class NodeWorld:
    intro = WHAT_IS_REAL_NODE
    stage_timeout = 360.0  # real pods start and drain in seconds, and the node may be busy

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cluster: Any = None
        self.product: Any = None
        self.api: httpx.Client | None = None
        self.traffic: Any = None

    def start(self, say: Say) -> None:
        say("starting a single-node cluster: etcd, kube-apiserver, kube-controller-manager,")
        say("kube-scheduler, containerd, kubelet and kube-proxy ...")
        self.cluster = LocalCluster(self.root / "cluster")
        self.cluster.start()
        say(f"node Ready in {self.cluster.startup_seconds:.1f}s")
        say("building the operator and serving images from their Dockerfiles (cached) ...")
        operator_image = self.cluster.load_image(OPERATOR)
        serving_image = self.cluster.load_image(SERVING)
        say(f"  {operator_image}\n  {serving_image}")
        say("helm install coalmine (charts/coalmine) into coalmine-system ...")
        self.product = InstalledProduct(
            self.cluster.kubeconfig, self.root / "product", operator_image, serving_image
        )
        self.product.start()
        self.api = self.cluster.control_plane.api_client()
        labels = {"pod-security.kubernetes.io/enforce": "restricted"}
        namespace = {"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": NAMESPACE, "labels": labels}}  # fmt: skip
        self.api.post("/api/v1/namespaces", json=namespace).raise_for_status()
        say("operator pod Ready")

    def stop(self) -> None:
        # No helm uninstall: the whole cluster goes, pods, iptables rules and bridge included.
        parts = [self.traffic and self.traffic.stop,
                 self.product and (lambda: self.product.stop(uninstall=False)),
                 self.api and self.api.close, self.cluster and self.cluster.stop]  # fmt: skip
        _stop_each([part for part in parts if part])

    def model(self, version: str, artifact: str = "good") -> dict[str, Any]:
        """``artifact``: good, inverted or shifted (e2e.devcluster.tinymodels)."""
        return dict(self.product.model(version, getattr(self.product.models, artifact)))

    def prometheus_for_operator(self) -> str:
        return str(self.product.prometheus_url_for_pods)

    def _api(self) -> httpx.Client:
        assert self.api is not None, "start() first"
        return self.api

    def apply(self, spec: dict[str, Any]) -> None:
        apply_model_deployment(self._api(), NAMESPACE, NAME, spec)

    def md(self) -> dict[str, Any]:
        return read_model_deployment(self._api(), NAMESPACE, NAME)

    def events(self) -> list[dict[str, Any]]:
        return model_deployment_events(self._api(), NAMESPACE)

    def operator_failure(self) -> str | None:
        """The kubelet restarts a crashed operator; a crash loop is what ends the story."""
        pods = self._api().get(f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/pods").json()["items"]
        for pod in pods:
            for container in (pod.get("status") or {}).get("containerStatuses") or []:
                waiting = (container.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") == "CrashLoopBackOff":
                    return f"the operator pod {pod['metadata']['name']} is crash-looping"
        return None

    def start_traffic(self) -> None:
        spec = self._api().get(f"/api/v1/namespaces/{NAMESPACE}/services/{NAME}").json()["spec"]
        url = f"http://{spec['clusterIP']}:{spec['ports'][0]['port']}"
        # kube-proxy programs the ClusterIP a moment after the pods turn Ready; wait for that
        # on the health path so no counted request meets an unrouted Service.
        wait_until(lambda: _answers(f"{url}/v2/health/ready"), timeout=60,
                   what=f"Service {NAME} to route to its pods")  # fmt: skip
        self.traffic = SteadyTraffic(url, NAME, rps=25.0).start()

    def stop_traffic(self) -> None:
        if self.traffic is not None:
            self.traffic.stop()

    def label_counts(self) -> LabelCounts:
        return label_counts(self.traffic.labels) if self.traffic is not None else LabelCounts()

    def client_counts(self) -> ClientCounts:
        if self.traffic is None:
            return ClientCounts()

        route = "Service"
        return ClientCounts(
            Counter({route: self.traffic.sent}),
            Counter({route: self.traffic.http_errors}),
            Counter({route: self.traffic.statuses[NO_REPLY]}),
            self.traffic.by_version.copy(),
        )

    def diagnostics(self) -> str:
        if self.cluster is None:
            return ""
        logs = self.cluster.node.paths.pod_logs
        return f"pod logs (operator, model servers) are under {logs}"


def label_counts(pipeline: LabelPipeline) -> LabelCounts:
    return LabelCounts(pipeline.added, pipeline.joined, pipeline.batches, pipeline.rejected.copy())


def _answers(url: str) -> bool | None:
    try:
        return True if httpx.get(url, timeout=2).status_code == 200 else None
    except httpx.TransportError:
        return None


def _stop_each(parts: list[Callable[[], Any]]) -> None:
    """Each part is stopped even if stopping an earlier one fails (a half-done start)."""
    for part in parts:
        try:
            part()
        except Exception as exc:  # report, and keep stopping the rest
            print(f"  while stopping: {type(exc).__name__}: {exc}", flush=True)
