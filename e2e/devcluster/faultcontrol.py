"""Start an ``e2e.devcluster.faultproxy`` process and steer it from a test.

    with FaultProxy.for_prometheus(prometheus.url, workdir) as proxy:
        proxy.inject(Fault("500", path="/api/v1/query"))
        ...
        proxy.clear()

``FaultProxy.for_apiserver`` serves TLS with the control plane's own serving certificate, so
``kubeconfig_through`` only rewrites a kubeconfig's ``server``: the client then reaches the API
server through the proxy and nothing else.
"""

from __future__ import annotations

import ssl
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from e2e.devcluster import REPO_ROOT
from e2e.devcluster.controlplane import ControlPlane
from e2e.devcluster.faultproxy import CONTROL
from e2e.devcluster.process import ManagedProcess, free_port, wait_until


@dataclass(frozen=True)
class Fault:
    """One rule (see e2e.devcluster.faultproxy): ``fault`` for requests whose method,
    path+query substring and watch-ness match, ``times`` times (None: until cleared)."""

    fault: str
    path: str = ""
    method: str = ""
    watch: bool | None = None
    times: int | None = None
    seconds: float = 0.0


class FaultProxy:
    def __init__(self, upstream: str, workdir: Path, *, tls: tuple[Path, Path, Path] | None = None):
        self.port = free_port()
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "e2e.devcluster.faultproxy", "--port", str(self.port)]
        argv += ["--upstream", upstream]
        self._verify: ssl.SSLContext | bool = False
        if tls:
            cert, key, ca = tls
            argv += ["--cert", str(cert), "--key", str(key), "--upstream-ca", str(ca)]
            self._verify = ssl.create_default_context(cafile=str(ca))
        self.process = ManagedProcess(
            f"faultproxy-{self.port}", argv, workdir / f"faultproxy-{self.port}.log", cwd=REPO_ROOT
        )

    @classmethod
    def for_prometheus(cls, prometheus_url: str, workdir: Path) -> FaultProxy:
        return cls(prometheus_url, workdir)

    @classmethod
    def for_apiserver(cls, plane: ControlPlane, workdir: Path) -> FaultProxy:
        pki = plane.pki
        return cls(plane.server, workdir, tls=(pki.apiserver.cert, pki.apiserver.key, pki.ca.cert))

    def start(self) -> FaultProxy:
        self.process.start()
        wait_until(
            lambda: True if self._control("GET").status_code == 200 else None,
            timeout=20, what="the fault proxy", process=self.process,
        )  # fmt: skip
        return self

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def inject(self, *faults: Fault) -> None:
        """Replace the rules: from now on, these faults (first match wins)."""
        response = self._control("PUT", json=[asdict(f) for f in faults])
        response.raise_for_status()

    def clear(self) -> None:
        self.inject()

    def stats(self) -> dict[str, Any]:
        """``forwarded`` (requests passed upstream) and each rule's ``hits``."""
        return dict(self._control("GET").json())

    def hits(self) -> int:
        return sum(r["hits"] for r in self.stats()["rules"])

    def kubeconfig_through(self, kubeconfig: Path) -> Path:
        """A copy of ``kubeconfig`` whose cluster is this proxy (same CA, same credentials)."""
        config = yaml.safe_load(kubeconfig.read_text())
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = self.url
        copy = kubeconfig.with_name(f"{kubeconfig.stem}-via-{self.port}.kubeconfig")
        copy.write_text(yaml.safe_dump(config))
        return copy

    def _control(self, method: str, **kwargs: Any) -> httpx.Response:
        try:
            with httpx.Client(verify=self._verify, timeout=5) as http:
                return http.request(method, self.url + CONTROL, **kwargs)
        except httpx.TransportError:
            return httpx.Response(599)
