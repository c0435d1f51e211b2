"""Two operator processes on one sandbox, with the chart's leader-election timing: ``a`` leads
first, ``b`` stands by. The HA integration tests and the takeover bench (bench.takeover) use it.

Each process runs under its own ServiceAccount, so the API server's audit log says which one
wrote what.
"""

from __future__ import annotations

import os
import signal
import time

import httpx
import yaml

from e2e.devcluster import REPO_ROOT
from e2e.devcluster.process import ManagedProcess, free_port
from e2e.devcluster.sandbox import Sandbox, wait_for

_ELECTION = yaml.safe_load((REPO_ROOT / "charts/coalmine/values.yaml").read_text())[
    "leaderElection"
]
CHART_LEASE = {
    "COALMINE_LEASE_DURATION_SECONDS": str(_ELECTION["leaseDurationSeconds"]),
    "COALMINE_RENEW_DEADLINE_SECONDS": str(_ELECTION["renewDeadlineSeconds"]),
    "COALMINE_RETRY_PERIOD_SECONDS": str(_ELECTION["retryPeriodSeconds"]),
}
"""The chart's defaults, read from its values.yaml: what is measured is what a cluster gets."""
LEASE_NAME = "coalmine-operator"
ACCOUNTS = {"a": "coalmine-operator", "b": "coalmine-operator-b"}


class Pair:
    """Operator ``a`` (leading first) and ``b`` (standby), each under its own account."""

    def __init__(self, h: Sandbox, env: dict[str, str]) -> None:
        self.h, self.env = h, env
        assert h.operator is not None
        h.operator.stop()  # the sandbox's own operator releases its Lease on SIGTERM
        self.ports = {"a": free_port(), "b": free_port()}
        self.accounts = dict(ACCOUNTS)
        self.kubeconfigs = {"a": h._kubeconfig, "b": h.operator_account(ACCOUNTS["b"])}
        self.processes: dict[str, ManagedProcess] = {}
        for name in ("a", "b"):
            self.spawn(name)
            if name == "a":
                wait_for(lambda: self.holder() == "a", 30, "operator a to take the Lease")
        h.operator = self.processes["a"]  # wait_status fails fast if the leader exits

    def spawn(self, name: str) -> None:
        """Start (or start again) operator ``name``."""
        self.processes[name] = self.h.spawn_operator(
            self.kubeconfigs[name], self.ports[name], f"operator-{name}",
            {**self.env, "POD_NAME": f"operator-{name}"},
        )  # fmt: skip

    def holder(self) -> str | None:
        response = self.h.api.get(
            f"/apis/coordination.k8s.io/v1/namespaces/{self.h.ns}/leases/{LEASE_NAME}"
        )
        if response.status_code != 200:
            return None
        identity = response.json()["spec"].get("holderIdentity") or ""
        return identity.removeprefix("operator-").split("_")[0] or None

    def health(self, name: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.ports[name]}/healthz", timeout=5)

    def role(self, name: str) -> str | None:
        """``leader`` or ``standby`` from its /healthz; None while it cannot answer."""
        try:
            return str(self.health(name).json()["role"])
        except (httpx.HTTPError, ValueError, KeyError):
            return None

    def kill(self, name: str) -> float:
        """SIGKILL, like a node dying: no release, no last write. Returns when."""
        process = self.processes[name]
        assert process.pid is not None
        os.killpg(process.pid, signal.SIGKILL)
        killed = time.monotonic()
        process.stop()
        return killed

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()
