"""coalmine installed on the local node cluster the way users install it, with what a real
installation has around it: the e2e suite's rollout world and the real-node demo's.

    product = InstalledProduct(kubeconfig, workdir, operator_image, serving_image)
    product.start()     # models + artifact server + pod-discovering Prometheus + helm install
    spec_model = product.model("v2")            # spec.model, downloadable by the pods
    ...
    product.stop()      # helm uninstall, then the processes

Model pods download their artifacts from an HTTP server on an address of this machine that
pods reach (the pod bridge's on our local cluster, the Docker network's gateway on kind), and
the operator, itself a pod, queries a Prometheus that listens there too. That Prometheus scrapes
the model pods and the operator's own /metrics, as the chart's two PodMonitors would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from e2e.devcluster.artifacts import ArtifactServer
from e2e.devcluster.helm import HelmRelease, operator_values
from e2e.devcluster.nodeconfig import BRIDGE_IP
from e2e.devcluster.sdprometheus import KubernetesSdPrometheus
from e2e.devcluster.tinymodels import Artifact, ModelArtifacts, make_models
from e2e.devcluster.webhooks import WebhookReceiver

MD_LABEL = "coalmine.dev/model-deployment"  # on every pod the operator makes: what to scrape
OPERATOR_NAMESPACE = "coalmine-system"


class InstalledProduct:
    def __init__(
        self,
        kubeconfig: Path,
        workdir: Path,
        operator_image: str,
        serving_image: str,
        *,
        host_address: str = BRIDGE_IP,
        tick_seconds: float = 1.0,
    ) -> None:
        self.workdir = workdir
        self.host_address = host_address
        self.models: ModelArtifacts = make_models(workdir / "models")
        self.artifacts = ArtifactServer(
            workdir / "models", host_address, workdir / "artifact-server.log"
        )
        self.prometheus = KubernetesSdPrometheus(
            workdir / "prometheus",
            kubeconfig,
            MD_LABEL,
            reachable_from_pods=True,
            operator_namespace=OPERATOR_NAMESPACE,
        )
        self.release = HelmRelease(kubeconfig, workdir, "coalmine", OPERATOR_NAMESPACE)
        # The operator's notifications (CloudEvents), received where the pods reach us.
        self.webhooks = WebhookReceiver(host_address)
        self._values = operator_values(
            operator_image, serving_image, self.prometheus_url_for_pods, tick_seconds
        )

    @property
    def prometheus_url_for_pods(self) -> str:
        """Where the operator's pod reaches Prometheus (127.0.0.1 would be the pod itself)."""
        return f"http://{self.host_address}:{self.prometheus.port}"

    def model(self, version: str, artifact: Artifact | None = None) -> dict[str, Any]:
        """``spec.model`` serving ``artifact`` (the good model by default) as ``version``."""
        return self.models.model(version, artifact, base_url=self.artifacts.base_url)

    def start(self) -> None:
        self.artifacts.start()
        try:
            hook = {"url": self.webhooks.start(), "format": "cloudevents"}
            self.prometheus.start()
            self.release.install({**self._values, "notifications": {"webhooks": [hook]}})
        except BaseException:
            self.stop(uninstall=False)
            raise

    def stop(self, *, uninstall: bool = True) -> None:
        """Uninstall first (the operator stops before what it talks to), then the rest; each
        part is stopped even if an earlier one fails."""
        try:
            if uninstall:
                self.release.uninstall()
        finally:
            try:
                self.prometheus.close()
            finally:
                self.artifacts.stop()
                self.webhooks.stop()
