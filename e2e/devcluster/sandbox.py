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
from e2e.devcluster.standin import KubeletStandIn, SubnetClaim
from e2e.devcluster.traffic import Recorder, TrafficGenerator

RULES = REPO_ROOT / "charts" / "coalmine" / "files" / "operator-rules.yaml"
LEASE_RULES = REPO_ROOT / "charts" / "coalmine" / "files" / "leader-election-rules.yaml"
OPERATOR_ACCOUNT = "coalmine-operator"
# Short leases in the integration tier: a test that restarts the operator (SIGKILL, then a new
# process) waits at most a few seconds for the dead one's Lease. The HA tests set the chart's.
FAST_LEASE = {
    "COALMINE_LEASE_DURATION_SECONDS": "4",
    "COALMINE_RENEW_DEADLINE_SECONDS": "3",
    "COALMINE_RETRY_PERIOD_SECONDS": "1",
}
CRD = REPO_ROOT / "crds" / "modeldeployment.yaml"
OPERATOR_ROLE = "coalmine-operator-it"
MD_PATH = "/apis/coalmine.dev/v1alpha1/namespaces/{ns}/modeldeployments"
_subnets = itertools.count(128)
"""Where this process starts looking for a free stand-in subnet (``SubnetClaim``): from 128,
away from the 1, 2, 3... that processes running an older sandbox (no claim) use."""
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
        # Another kubeconfig for the operator (e.g. through a fault proxy); else its own.
        self.operator_kubeconfig: Path | None = None
        self.liveness_port = free_port()
        self.metrics_port = free_port()
        # Machine-wide: other test processes run sandboxes at the same time.
        self._subnet = SubnetClaim.take(start=next(_subnets))
        self.standin = KubeletStandIn(
            self.api, namespace, workdir / "pods", prometheus, self._subnet.subnet
        )
        self.recorder = Recorder(self.api, namespace, self.name)
        self.traffic: TrafficGenerator | None = None
        self._bindings: list[str] = []

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
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "coalmine-leader-election"},
            "rules": yaml.safe_load(LEASE_RULES.read_text()),
        }
        self.api.post(
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{self.ns}/roles", json=role
        ).raise_for_status()
        self._kubeconfig = self.operator_account(OPERATOR_ACCOUNT)
        self.standin.start()
        self.recorder.start()
        self.start_operator()

    def operator_account(self, account: str) -> Path:
        """A ServiceAccount in the namespace with the operator's rights, as the chart grants
        them (the ClusterRole, and the Lease Role in its own namespace, which here is the
        watched one); its kubeconfig, whose default namespace is where the Lease lives."""
        kubeconfig = self.plane.kubeconfig_for_service_account(self.ns, account)
        subjects = [{"kind": "ServiceAccount", "name": account, "namespace": self.ns}]
        binding_name = f"{account}-{self.ns}"
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": binding_name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": OPERATOR_ROLE,
            },
            "subjects": subjects,
        }
        self.api.post(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", json=binding
        ).raise_for_status()
        self._bindings.append(binding_name)
        lease_binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"{account}-leader-election"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "coalmine-leader-election",
            },
            "subjects": subjects,
        }
        self.api.post(
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{self.ns}/rolebindings",
            json=lease_binding,
        ).raise_for_status()
        return kubeconfig

    def start_operator(self) -> None:
        self.operator = self.spawn_operator(
            self.operator_kubeconfig or self._kubeconfig,
            self.liveness_port,
            "operator",
            metrics_port=self.metrics_port,
        )
        # Its own /metrics too, as a PodMonitor would (the dashboard's operator panels).
        self.prometheus.set_targets([f"127.0.0.1:{self.metrics_port}"], job="coalmine-operator")

    @property
    def service_account_kubeconfig(self) -> Path:
        """The operator's own credentials (its ServiceAccount's token), straight to the API."""
        return self._kubeconfig

    def spawn_operator(
        self,
        kubeconfig: Path,
        liveness_port: int,
        name: str,
        env: dict[str, str] | None = None,
        metrics_port: int = 0,
    ) -> ManagedProcess:
        """One more operator process (the HA tests run two, each under its own account);
        ``metrics_port`` 0: no /metrics (two processes cannot share the sandbox's port)."""
        settings = {
            "KUBECONFIG": str(kubeconfig),
            "COALMINE_DEFAULT_PROMETHEUS_ADDRESS": self.prometheus.url,
            "COALMINE_TICK_SECONDS": "0.5",
            "COALMINE_LIVENESS_PORT": str(liveness_port),
            "COALMINE_METRICS_PORT": str(metrics_port),
            "COALMINE_DEFAULT_SERVING_IMAGE": "coalmine/serving:it",
            "PYTHONPATH": PRODUCT_PYTHONPATH,
            **FAST_LEASE,
            **self.operator_env,
            **(env or {}),
        }
        argv = ["/usr/bin/env", *(f"{k}={v}" for k, v in settings.items()), sys.executable]
        argv += ["-m", "coalmine.cli.operator", "--namespace", self.ns]
        process = ManagedProcess(name, argv, self.workdir / f"{name}.log")
        process.start()
        return process

    def kill_operator(self) -> None:
        """SIGKILL: no cleanup, no final status write, exactly like a node dying."""
        assert self.operator is not None and self.operator.pid is not None
        os.killpg(self.operator.pid, signal.SIGKILL)
        self.operator.stop()

    def start_traffic(
        self, skip_variant: str | None = None, canary_input_shift: float = 0.0, rps: float = 25.0
    ) -> TrafficGenerator:
        self.traffic = TrafficGenerator(
            self.api, self.standin, self.ns, self.name, "iris", rps=rps,
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
        self._subnet.release()  # after the pods' servers have exited
        for binding in self._bindings:
            self.api.delete(f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{binding}")
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
                f"\n{self._scrape_diagnosis()}"
            ) from exc

    def _scrape_diagnosis(self) -> str:
        """What Prometheus scrapes and which request-counter series it holds now: why an
        analysis saw a side as stale or empty."""
        try:
            pods = [
                (p.name, p.address, p.labels.get("coalmine.dev/revision"))
                for p in self.standin.ready_pods()
            ]
            targets = self.prometheus.targets_health()
            series = self.prometheus.query(
                "count by (instance, variant, version, revision) (coalmine_requests_total)"
            )
            labels = [s["metric"] for s in series]
            return f"ready pods: {pods}\nscrape targets: {targets}\nseries: {labels}"
        except Exception as exc:  # a diagnosis must not hide the timeout
            return f"(no scrape diagnosis: {exc})"

    def events(self) -> list[dict[str, Any]]:
        return model_deployment_events(self.api, self.ns)

    def events_with(self, reason: str, timeout: float = 20) -> list[dict[str, Any]]:
        """The Events, once one with ``reason`` is among them. The operator posts a tick's
        Events after its status write, so a test that has just seen the status can look
        before they land."""

        def landed() -> list[dict[str, Any]] | None:
            events = self.events()
            return events if any(e["reason"] == reason for e in events) else None

        return wait_for(landed, timeout, f"a {reason} Event")

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
