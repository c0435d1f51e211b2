"""Prometheus (Debian's binary, outside the cluster) discovering pods through the real API.

`kubernetes_sd_configs` with role `pod` watches the API server with the kubeconfig's
credentials (any cluster); relabelling keeps the pods of one app and their `http` port.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coalmine.devcluster.prometheus import PrometheusServer


class KubernetesSdPrometheus(PrometheusServer):
    def __init__(self, workdir: Path, kubeconfig: Path, namespace: str, app: str) -> None:
        super().__init__(workdir)
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.app = app

    def _config(self) -> dict[str, Any]:
        relabel = [
            {"source_labels": ["__meta_kubernetes_pod_label_app"], "regex": self.app,
             "action": "keep"},
            {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": "http",
             "action": "keep"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ]  # fmt: skip
        job = {
            "job_name": f"{self.namespace}/{self.app}",
            "kubernetes_sd_configs": [
                {
                    "role": "pod",
                    "kubeconfig_file": str(self.kubeconfig),
                    "namespaces": {"names": [self.namespace]},
                }
            ],
            "relabel_configs": relabel,
        }
        interval = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
        return {"global": interval, "scrape_configs": [job]}
