"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

No kubelet and no scheduler: objects are stored, validated, admitted and reconciled by the real
controllers (Deployments get ReplicaSets, owners garbage-collect children, namespaces delete),
but no pod ever runs. That is what an operator's integration tests need; e2e/ adds the node.
"""

from __future__ import annotations

import ssl
import time
from pathlib import Path
from typing import Any

import httpx

from e2e.devcluster import components
from e2e.devcluster.kubeconfig import write_kubeconfig
from e2e.devcluster.pki import ControlPlanePki, create_pki
from e2e.devcluster.process import ManagedProcess, free_port, wait_until

TOKEN_LIFETIME_SECONDS = 24 * 3600


def _distinct_free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


class ControlPlane:
    """Start with `start()`, stop with `stop()`; `kubeconfig` is the admin's (system:masters)."""

    def __init__(
        self,
        workdir: Path,
        bin_dir: Path,
        *,
        advertise_address: str = "127.0.0.1",
        bind_address: str = "127.0.0.1",
    ):
        self.workdir = workdir
        self.bin_dir = bin_dir
        self.advertise_address = advertise_address
        self.bind_address = bind_address
        self.ports = components.Ports(*_distinct_free_ports(4))
        self.server = f"https://127.0.0.1:{self.ports.apiserver}"
        self.kubeconfig = workdir / "admin.kubeconfig"
        self.log_dir = workdir / "logs"
        self.audit_log = workdir / "audit" / "audit.log"
        """Service accounts' writes, one JSON audit event a line (see components.AUDIT_POLICY)."""
        self.startup_seconds: float | None = None
        self._pki: ControlPlanePki | None = None
        self._processes: list[ManagedProcess] = []

    @property
    def processes(self) -> list[ManagedProcess]:
        return list(self._processes)

    @property
    def pki(self) -> ControlPlanePki:
        """The CA and keys, e.g. for a node (e2e.devcluster.node) to join the cluster."""
        if self._pki is None:
            raise RuntimeError("the control plane has not been started")
        return self._pki

    def start(self, timeout: float = 120.0) -> None:
        began = time.monotonic()
        pki = self._pki = create_pki(self.workdir / "pki", components.SERVICE_IP)
        write_kubeconfig(
            self.kubeconfig, server=self.server, ca_cert=pki.ca.cert, user="coalmine-admin",
            client_cert=pki.admin.cert, client_key=pki.admin.key,
        )  # fmt: skip
        kcm_kubeconfig = write_kubeconfig(
            self.workdir / "controller-manager.kubeconfig", server=self.server,
            ca_cert=pki.ca.cert, user="system:kube-controller-manager",
            client_cert=pki.controller_manager.cert, client_key=pki.controller_manager.key,
        )  # fmt: skip
        try:
            self._start_etcd(timeout)
            self._start_apiserver(pki, timeout)
            self._start_controller_manager(pki, kcm_kubeconfig, timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop every component, newest first (the apiserver before the etcd it writes to)."""
        for process in reversed(self._processes):
            process.stop()

    def api_client(self) -> httpx.Client:
        """An httpx client authenticated as the admin, rooted at the API server."""
        if self._pki is None:
            raise RuntimeError("the control plane has not been started")
        context = ssl.create_default_context(cafile=str(self._pki.ca.cert))
        context.load_cert_chain(str(self._pki.admin.cert), str(self._pki.admin.key))
        return httpx.Client(base_url=self.server, verify=context, timeout=30.0)

    def kubeconfig_for_service_account(self, namespace: str, name: str) -> Path:
        """Create the namespace and ServiceAccount if missing and write a kubeconfig with a
        TokenRequest token for it: a client with exactly the RBAC the test grants that account.
        """
        with self.api_client() as api:
            _create_if_missing(api, "/api/v1/namespaces", _core("Namespace", namespace))
            _create_if_missing(
                api,
                f"/api/v1/namespaces/{namespace}/serviceaccounts",
                _core("ServiceAccount", name),
            )
            response = api.post(
                f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
                json={
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenRequest",
                    "spec": {"expirationSeconds": TOKEN_LIFETIME_SECONDS},
                },
            )
            response.raise_for_status()
            token: str = response.json()["status"]["token"]
        assert self._pki is not None
        return write_kubeconfig(
            self.workdir / f"sa-{namespace}-{name}.kubeconfig", server=self.server,
            ca_cert=self._pki.ca.cert, user=f"system:serviceaccount:{namespace}:{name}",
            token=token, namespace=namespace,
        )  # fmt: skip

    def _launch(self, name: str, argv: list[str]) -> ManagedProcess:
        process = ManagedProcess(name, argv, self.log_dir / f"{name}.log", cwd=self.workdir)
        self._processes.append(process)
        process.start()
        return process

    def _start_etcd(self, timeout: float) -> None:
        argv = components.etcd_argv(self.bin_dir, self.workdir / "etcd-data", self.ports)
        process = self._launch("etcd", argv)
        url = f"http://127.0.0.1:{self.ports.etcd_client}/health"
        with httpx.Client(timeout=2.0) as http:
            wait_until(
                lambda: True if http.get(url).json().get("health") == "true" else None,
                timeout=timeout, what="etcd /health", process=process,
            )  # fmt: skip

    def _start_apiserver(self, pki: ControlPlanePki, timeout: float) -> None:
        argv = components.apiserver_argv(
            self.bin_dir, pki, self.ports, self.workdir / "apiserver-certs",
            self.advertise_address, self.bind_address, self.audit_log.parent,
        )  # fmt: skip
        process = self._launch("kube-apiserver", argv)
        # /readyz turns 200 only after every post-start hook, including the RBAC bootstrap roles.
        with self.api_client() as api:
            wait_until(
                lambda: True if api.get("/readyz").status_code == 200 else None,
                timeout=timeout, what="kube-apiserver /readyz", process=process,
            )  # fmt: skip

    def _start_controller_manager(
        self, pki: ControlPlanePki, kubeconfig: Path, timeout: float
    ) -> None:
        argv = components.controller_manager_argv(
            self.bin_dir, pki, self.ports, kubeconfig, self.workdir / "controller-manager-certs"
        )
        process = self._launch("kube-controller-manager", argv)
        healthz = f"https://127.0.0.1:{self.ports.controller_manager}/healthz"
        # Its serving certificate is self-signed on the fly; only liveness is read from it.
        with httpx.Client(verify=False, timeout=2.0) as http:
            wait_until(
                lambda: True if http.get(healthz).status_code == 200 else None,
                timeout=timeout, what="kube-controller-manager /healthz", process=process,
            )  # fmt: skip
        # Healthy is not yet working: the `default` ServiceAccount appears once the controllers
        # run with their own credentials, which is what tests rely on.
        with self.api_client() as api:
            wait_until(
                lambda: True
                if api.get("/api/v1/namespaces/default/serviceaccounts/default").status_code == 200
                else None,
                timeout=timeout, what="the serviceaccount controller", process=process,
            )  # fmt: skip


def _core(kind: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}}


def _create_if_missing(api: httpx.Client, collection: str, body: dict[str, Any]) -> None:
    response = api.post(collection, json=body)
    if response.status_code != 409:  # 409 Conflict: it exists already, which is fine
        response.raise_for_status()
