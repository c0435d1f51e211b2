"""The cluster under test: any cluster named by a kubeconfig, or our local single-node cluster.

COALMINE_E2E_KUBECONFIG (or KUBECONFIG) set  -> use that cluster as it is (kind, a real one);
                                               images come from COALMINE_E2E_SERVING_IMAGE /
                                               COALMINE_E2E_OPERATOR_IMAGE (already loaded).
neither set                                 -> start LocalCluster (control plane + node on
                                               this machine), build and import the images.

The operator scenarios also need the two directions between this machine and the pods:
COALMINE_E2E_ROUTABLE=1 (this machine routes to pod and Service IPs: the clients and
Prometheus) and COALMINE_E2E_HOST_ADDRESS (an address of this machine that pods reach: the
model artifacts and Prometheus are served there). Our local cluster has both; e2e/kind/run.sh
sets them up for kind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from e2e.devcluster.cluster import LocalCluster
from e2e.devcluster.images import OPERATOR, SERVING, ImageSpec
from e2e.devcluster.nodeconfig import BRIDGE_IP


@dataclass
class ClusterUnderTest:
    kubeconfig: Path
    # True when this machine routes to pod IPs and ClusterIPs (our local cluster): requests go
    # straight to the Service; otherwise through the API server's service proxy.
    routable: bool
    # An address of this machine that pods can reach (None: they cannot reach it).
    host_address: str | None = None
    local: LocalCluster | None = None
    _images: dict[str, str] = field(default_factory=dict)

    def image(self, spec: ImageSpec) -> str:
        if spec.repository not in self._images:
            self._images[spec.repository] = self._resolve_image(spec)
        return self._images[spec.repository]

    def _resolve_image(self, spec: ImageSpec) -> str:
        variable = {SERVING: "COALMINE_E2E_SERVING_IMAGE", OPERATOR: "COALMINE_E2E_OPERATOR_IMAGE"}
        given = os.environ.get(variable[spec])
        if self.local is None:
            if not given:
                raise RuntimeError(f"set {variable[spec]} to an image the cluster under test has")
            return given
        # Local: a named image (built earlier, in buildah's store) or a fresh build.
        name = given or self.local.images.build(spec)
        self.local.images.load(name, self.local.node.runtime)
        return name


def external_kubeconfig() -> Path | None:
    value = os.environ.get("COALMINE_E2E_KUBECONFIG") or os.environ.get("KUBECONFIG")
    return Path(value) if value else None


def start_cluster(workdir: Path) -> ClusterUnderTest:
    """The external cluster if one is named, else a freshly started LocalCluster."""
    kubeconfig = external_kubeconfig()
    if kubeconfig is not None:
        # An external cluster's pods are routable only if the user says so (e.g. our dev up).
        routable = os.environ.get("COALMINE_E2E_ROUTABLE", "") == "1"
        host_address = os.environ.get("COALMINE_E2E_HOST_ADDRESS") or None
        return ClusterUnderTest(kubeconfig, routable=routable, host_address=host_address)
    local = LocalCluster(workdir)
    local.start()
    return ClusterUnderTest(local.kubeconfig, routable=True, host_address=BRIDGE_IP, local=local)
