"""One rollout's world (an integration test's, or the demo's): a restricted namespace, the
operator as a subprocess under its own ServiceAccount (RBAC from
charts/coalmine/files/operator-rules.yaml), the kubelet stand-in, Prometheus, client traffic
and a recorder."""

from __future__ import annotations

import functools
import itertools
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from e2e.devcluster import PRODUCT_PYTHONPATH, REPO_ROOT
from e2e.devcluster.controlplane import ControlPlane
from e2e.devcluster.process import ManagedProcess, free_port
from e2e.devcluster.prometheus import PrometheusServer
from e2e.devcluster.standin import KubeletStandIn
from e2e.devcluster.traffic import Recorder, TrafficGenerator

RULES = REPO_ROOT / "charts" / "coalmine" / "files" / "operator-rules.yaml"
CRD = REPO_ROOT / "crds" / "modeldeployment.yaml"
OPERATOR_ROLE = "coalmine-operator-it"
MD_PATH = "/apis/coalmine.dev/v1alpha1/namespaces/{ns}/modeldeployments"
_subnets = itertools.count(1)
T = TypeVar("T")


def install_cluster_objects(api: httpx.Client) -> None:
    """The CRD and the operator's ClusterRole, once per session (idempotent)."""
    crd = yaml.safe_load(CRD.read_text())
    name = crd["metadata"]["name"]
    apply_object(api, f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}", crd)
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": OPERATOR_ROLE},
        "rules": yaml.safe_load(RULES.read_text()),
    }
    apply_object(api, f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{OPERATOR_ROLE}", role)
    wait_for(
        lambda: _established(api, name), timeout=30, what="the ModelDeployment CRD to be served"
    )


def install_crds(api: httpx.Client, files: list[Path]) -> None:
    """Apply CRD files and wait until each is served."""
    for file in files:
        crd = yaml.safe_load(file.read_text())
        name = crd["metadata"]["name"]
        apply_object(api, f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}", crd)
        wait_for(functools.partial(_crd_established, api, name), timeout=30, what=f"CRD {name}")


def _crd_established(api: httpx.Client, name: str) -> bool:
    body = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").json()
    conditions = (body.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def _established(api: httpx.Client, name: str) -> bool:
    body = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").json()
    conditions = (body.get("status") or {}).get("conditions") or []
    served = any(c["type"] == "Established" and c["status"] == "True" for c in conditions)
    return served and api.get(MD_PATH.format(ns="default")).status_code == 200


def apply_object(api: httpx.Client, path: str, body: dict[str, Any]) -> None:
    response = api.patch(
        path,
        params={"fieldManager": "coalmine-tests", "force": "true"},
        content=yaml.safe_dump(body),
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    response.raise_for_status()


def apply_model_deployment(
    api: httpx.Client,
    ns: str,
    name: str,
    spec: dict[str, Any],
    annotations: dict[str, str] | None = None,
) -> None:
    body = {
        "apiVersion": "coalmine.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}},
        "spec": spec,
    }
    apply_object(api, f"{MD_PATH.format(ns=ns)}/{name}", body)


def read_model_deployment(api: httpx.Client, ns: str, name: str) -> dict[str, Any]:
    response = api.get(f"{MD_PATH.format(ns=ns)}/{name}")
    response.raise_for_status()
    return dict(response.json())


def model_deployment_events(api: httpx.Client, ns: str) -> list[dict[str, Any]]:
    items = api.get(f"/api/v1/namespaces/{ns}/events").json()["items"]
    return [e for e in items if e["involvedObject"].get("kind") == "ModelDeployment"]


def wait_for(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.2) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


class Sandbox:
    def __init__(
        self,
        control_plane: ControlPlane,
        prometheus: PrometheusServer,
        workdir: Path,
        namespace: str,
    ) -> None:
        self.plane, self.prometheus, self.workdir, self.ns = (
            control_plane,
            prometheus,
            workdir,
            namespace,
        )
        self.api = control_plane.api_client()
        self.name = "iris"
        self.operator: ManagedProcess | None = None
        # More COALMINE_* settings for the operator (a test sets them, then restarts it).
        self.operator_env: dict[str, str] = {}
        self.liveness_port = free_port()
        self.metrics_port = free_port()
        self.standin = KubeletStandIn(
            self.api, namespace, workdir / "pods", prometheus, next(_subnets)
        )
        self.recorder = Recorder(self.api, namespace, self.name)
        self.traffic: TrafficGenerator | None = None

    # --- setup ---

    def setup(self) -> None:
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": self.ns,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        }
        self.api.post("/api/v1/namespaces", json=namespace).raise_for_status()
        self._kubeconfig = self.plane.kubeconfig_for_service_account(self.ns, "coalmine-operator")
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"coalmine-operator-{self.ns}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": OPERATOR_ROLE,
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": "coalmine-operator", "namespace": self.ns}
            ],
        }
        self.api.post(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", json=binding
        ).raise_for_status()
        self.standin.start()
        self.recorder.start()
        self.start_operator()

    def start_operator(self) -> None:
        env = {
            "KUBECONFIG": str(self._kubeconfig),
            "COALMINE_DEFAULT_PROMETHEUS_ADDRESS": self.prometheus.url,
            "COALMINE_TICK_SECONDS": "0.5",
            "COALMINE_LIVENESS_PORT": str(self.liveness_port),
            "COALMINE_METRICS_PORT": str(self.metrics_port),
            "COALMINE_DEFAULT_SERVING_IMAGE": "coalmine/serving:it",
            "PYTHONPATH": PRODUCT_PYTHONPATH,
            **self.operator_env,
        }
        argv = ["/usr/bin/env", *(f"{k}={v}" for k, v in env.items()), sys.executable]
        argv += ["-m", "coalmine.cli.operator", "--namespace", self.ns]
        self.operator = ManagedProcess("operator", argv, self.workdir / "operator.log")
        self.operator.start()
        # Its own /metrics too, as a PodMonitor would (the dashboard's operator panels).
        self.prometheus.set_targets([f"127.0.0.1:{self.metrics_port}"], job="coalmine-operator")

    def kill_operator(self) -> None:
        """SIGKILL: no cleanup, no final status write, exactly like a node dying."""
        assert self.operator is not None and self.operator.pid is not None
        os.killpg(self.operator.pid, signal.SIGKILL)
        self.operator.stop()

    def start_traffic(
        self, skip_variant: str | None = None, canary_input_shift: float = 0.0
    ) -> TrafficGenerator:
        self.traffic = TrafficGenerator(
            self.api, self.standin, self.ns, self.name, "iris",
            skip_variant=skip_variant, canary_input_shift=canary_input_shift,
        )  # fmt: skip
        self.traffic.start()
        return self.traffic

    def teardown(self) -> None:
        if self.traffic:
            self.traffic.stop()
        self.recorder.stop()
        if self.operator:
            self.operator.stop()
        self.standin.stop()
        self.api.delete(
            f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/coalmine-operator-{self.ns}"
        )
        self.api.delete(f"/api/v1/namespaces/{self.ns}")
        self.api.close()

    # --- the ModelDeployment ---

    def apply(self, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> None:
        apply_model_deployment(self.api, self.ns, self.name, spec, annotations)

    def md(self) -> dict[str, Any]:
        return read_model_deployment(self.api, self.ns, self.name)

    def status(self) -> dict[str, Any]:
        return dict(self.md().get("status", {}))

    def wait_status(
        self, check: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            if self.operator is not None and not self.operator.running:
                raise RuntimeError(f"the operator exited:\n{self.operator.log_tail(4000)}")
            status = self.status()
            return status if check(status) else None

        try:
            return wait_for(probe, timeout=timeout, what=what)
        except TimeoutError as exc:
            raise TimeoutError(
                f"{exc}\nlast status: {self.status()}\nstand-in errors: {self.standin.errors}"
            ) from exc

    def events(self) -> list[dict[str, Any]]:
        return model_deployment_events(self.api, self.ns)

    def deployment(self, variant: str) -> dict[str, Any] | None:
        response = self.api.get(
            f"/apis/apps/v1/namespaces/{self.ns}/deployments/{self.name}-{variant}"
        )
        return response.json() if response.status_code == 200 else None

    def delete(self) -> None:
        self.api.delete(f"{MD_PATH.format(ns=self.ns)}/{self.name}").raise_for_status()

    def services(self) -> list[dict[str, Any]]:
        items = self.api.get(f"/api/v1/namespaces/{self.ns}/services").json()["items"]
        return list(items)

    def deployments(self) -> list[dict[str, Any]]:
        items = self.api.get(f"/apis/apps/v1/namespaces/{self.ns}/deployments").json()["items"]
        return list(items)
