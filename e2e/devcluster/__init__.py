"""Real components for integration tests, the e2e tier, the demo and local development.

Prometheus (Debian's binary) and a Kubernetes control plane (etcd, kube-apiserver,
kube-controller-manager built by e2e/cluster/build.sh) run as plain loopback processes; a node
(containerd, kubelet, kube-proxy) runs real pods where this machine allows it.

Not part of the product: nothing under operator/ or serving/ imports this package (an
import-linter contract says so), and it runs only from a source checkout, whose files (the
chart, the CRD, the Dockerfiles, the build scripts) it finds through ``REPO_ROOT``.
"""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # e2e/devcluster/__init__.py -> the checkout
# For the product processes we start (operator, model servers): this checkout's code, whatever
# the virtualenv has installed (e.g. a shared venv installed from another checkout).
PRODUCT_PYTHONPATH = os.pathsep.join(str(REPO_ROOT / part) for part in ("operator", "serving"))
