"""Prometheus outside the cluster, discovering pods through the real API server.

`kubernetes_sd_configs` (role `pod`) watches the API with the kubeconfig's credentials, so it
works against any cluster; relabelling keeps the pods carrying `pod_label` and their `http`
port, and copies namespace and pod name into labels (the operator's queries scope by
`namespace`). Debian's prometheus is built without Kubernetes discovery, so this uses the same
upstream project built from the Go module proxy by e2e/cluster/node-deps.sh.
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
    ) -> None:
        super().__init__(workdir, binary=find_sd_prometheus())
        self.kubeconfig = kubeconfig
        self.pod_label = pod_label
        self.namespaces = namespaces or []
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
        meta_label = "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", self.pod_label)
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
        interval = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
        return {"global": interval, "scrape_configs": [job]}
