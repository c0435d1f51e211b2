"""Measure the local cluster's cold and warm time-to-ready (a tool, not a test: no asserts).

    .venv/bin/python -m e2e.measure warm     # with the usual cache (~/.cache/coalmine)
    .venv/bin/python -m e2e.measure cold     # with an empty cache (Kubernetes binaries and
                                             # crictl reused: their cold build is reported by
                                             # e2e/cluster/build.sh itself)
    .venv/bin/python -m e2e.measure rebuild  # image rebuild: unchanged, then after a code
                                             # change, on a frozen copy (git archive HEAD)

Prints one JSON object: seconds per phase, and `total` from nothing to 3 Ready serving pods.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from e2e.devcluster.baseimage import build_base_archive
from e2e.devcluster.binaries import kube_bin_dir
from e2e.devcluster.cluster import LocalCluster
from e2e.devcluster.images import SERVING, ImageBuilder
from e2e.devcluster.runtime import cache_root, find_crictl
from e2e.support.kube import Kube
from e2e.support.steps import given_a_serving_deployment, then_its_pods_become_ready_with_pod_ips
from e2e.support.workloads import tiny_classifier

T = TypeVar("T")
REPLICAS = 3


def timed(figures: dict[str, float], phase: str, action: Callable[[], T]) -> T:
    began = time.monotonic()
    result = action()
    figures[phase] = round(time.monotonic() - began, 1)
    return result


def measure(cache: Path, workdir: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    began = time.monotonic()
    timed(figures, "base_image", lambda: build_base_archive(cache / "images"))
    cluster = LocalCluster(workdir, cache)
    image = timed(figures, "serving_image_build", lambda: cluster.images.build(SERVING))
    try:
        timed(figures, "cluster_start", cluster.start)
        timed(figures, "image_import", lambda: cluster.images.load(image, cluster.node.runtime))
        kube = Kube(cluster.kubeconfig)
        namespace = kube.create_namespace("measure")

        def deploy(name: str) -> None:
            given_a_serving_deployment(kube, namespace, name, image, tiny_classifier(), REPLICAS)
            then_its_pods_become_ready_with_pod_ips(kube, namespace, name, REPLICAS)

        timed(figures, "first_deployment_ready", lambda: deploy("first"))
        timed(figures, "second_deployment_ready", lambda: deploy("second"))
        figures["total"] = round(time.monotonic() - began - figures["second_deployment_ready"], 1)
    finally:
        timed(figures, "teardown", cluster.stop)
    return figures


def measure_rebuild(cache: Path, context: Path) -> dict[str, float]:
    """Build serving from a frozen copy of HEAD three times: as it is (cache state unknown),
    unchanged (fully cached), and after appending a comment to one source file."""
    context.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "HEAD"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(context)], input=archive, check=True)
    builder = ImageBuilder(cache / "images", context)
    figures: dict[str, float] = {}
    timed(figures, "first_build", lambda: builder.build(SERVING))
    timed(figures, "unchanged_rebuild", lambda: builder.build(SERVING))
    with (context / "serving" / "coalmine_serving" / "__init__.py").open("a") as source:
        source.write("# a code change\n")
    timed(figures, "rebuild_after_code_change", lambda: builder.build(SERVING))
    return figures


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "warm"
    with tempfile.TemporaryDirectory(prefix="coalmine-measure-") as tmp:
        if mode == "rebuild":
            figures = measure_rebuild(cache_root(), Path(tmp) / "context")
            print(json.dumps({"mode": mode, **figures}))
            return
        if mode == "cold":
            # Keep only what build.sh and node-deps.sh cache (measured by them, not here).
            os.environ["COALMINE_KUBE_BIN"] = str(kube_bin_dir())
            os.environ["COALMINE_CRICTL"] = find_crictl()
            cache = Path(tmp) / "cache"
        else:
            cache = Path(os.environ.get("COALMINE_CACHE") or Path.home() / ".cache/coalmine")
        figures = measure(cache, Path(tmp) / "run")
    print(json.dumps({"mode": mode, "replicas": REPLICAS, **figures}))


if __name__ == "__main__":
    main()
