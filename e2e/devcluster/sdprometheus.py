"""Prometheus outside the cluster, discovering pods through the real API server.

`kubernetes_sd_configs` (role `pod`) watches the API with the kubeconfig's credentials, so it
works against any cluster; relabelling keeps the pods carrying `pod_label` and their `http`
port, and copies namespace and pod name into labels (the operator's queries scope by
`namespace`). With `operator_namespace`, a second job scrapes the operator's own `/metrics`
the way the chart's operator PodMonitor would (templates/operator-podmonitor.yaml): the pods
with the chart's selector labels in that namespace, on the container port named `metrics`,
honouring the series' own `namespace`/`name` labels (they name the ModelDeployment).

Debian's prometheus is built without Kubernetes discovery, so this uses the same upstream
project built from the Go module proxy by e2e/cluster/node-deps.sh.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from e2e.devcluster.prometheus import PrometheusServer
from e2e.devcluster.runtime import cache_root

PROMETHEUS_VERSION = "v0.316.0"
# node-deps.sh builds it with Kubernetes discovery only (`-tags remove_all_sd,enable_kubernetes_sd`)
# into a dir named for that, so an older build with every discoverer is never picked up.
PROMETHEUS_BUILD = f"prometheus-{PROMETHEUS_VERSION}-k8ssd"


def find_sd_prometheus() -> str:
    """$COALMINE_E2E_PROMETHEUS, else node-deps.sh's cached build."""
    found = os.environ.get("COALMINE_E2E_PROMETHEUS") or str(
        cache_root() / PROMETHEUS_BUILD / "bin" / "prometheus"
    )
    if not Path(found).is_file():
        raise FileNotFoundError(f"{found} missing: run e2e/cluster/node-deps.sh")
    return found


class KubernetesSdPrometheus(PrometheusServer):
    def __init__(
        self,
        workdir: Path,
        kubeconfig: Path,
        pod_label: str,
        namespaces: list[str] | None = None,
        *,
        reachable_from_pods: bool = False,
        operator_namespace: str | None = None,
    ) -> None:
        super().__init__(workdir, binary=find_sd_prometheus())
        self.kubeconfig = kubeconfig
        self.pod_label = pod_label
        self.namespaces = namespaces or []
        self.operator_namespace = operator_namespace
        if reachable_from_pods:
            # The operator runs in a pod and queries Prometheus: listen on the pod bridge too.
            # (self.url stays on 127.0.0.1, which 0.0.0.0 includes.)
            self.process.argv = [
                f"--web.listen-address=0.0.0.0:{self.port}"
                if arg.startswith("--web.listen-address=")
                else arg
                for arg in self.process.argv
            ]

    @property
    def job(self) -> str:
        return "coalmine-models"

    def _config(self) -> dict[str, Any]:
        meta_label = "__meta_kubernetes_pod_label_" + _meta(self.pod_label)
        relabel = [
            {"source_labels": [meta_label], "regex": ".+", "action": "keep"},
            {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": "http",
             "action": "keep"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ]  # fmt: skip
        discovery: dict[str, Any] = {"role": "pod", "kubeconfig_file": str(self.kubeconfig)}
        if self.namespaces:
            discovery["namespaces"] = {"names": self.namespaces}
        job = {
            "job_name": self.job,
            "kubernetes_sd_configs": [discovery],
            "relabel_configs": relabel,
        }
        jobs = [job] if self.operator_namespace is None else [job, self._operator_job()]
        interval = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
        return {"global": interval, "scrape_configs": jobs}

    def _operator_job(self) -> dict[str, Any]:
        """The chart's operator PodMonitor as a plain scrape job."""
        relabel = [
            {"source_labels": [f"__meta_kubernetes_pod_label_{_meta(key)}"], "regex": value,
             "action": "keep"}
            for key, value in OPERATOR_SELECTOR.items()
        ]  # fmt: skip
        relabel.append({"source_labels": ["__meta_kubernetes_pod_container_port_name"],
                     "regex": "metrics", "action": "keep"})  # fmt: skip
        relabel.append({"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"})
        discovery = {"role": "pod", "kubeconfig_file": str(self.kubeconfig),
                     "namespaces": {"names": [self.operator_namespace]}}  # fmt: skip
        return {"job_name": "coalmine-operator", "honor_labels": True,
                "kubernetes_sd_configs": [discovery], "relabel_configs": relabel}  # fmt: skip


# The chart's coalmine.selectorLabels for a release named coalmine (e2e.devcluster.product).
OPERATOR_SELECTOR = {
    "app.kubernetes.io/name": "coalmine",
    "app.kubernetes.io/component": "operator",
}


def _meta(label: str) -> str:
    """A pod label as Prometheus' discovery names it (every character outside [a-zA-Z0-9_]: _)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)
