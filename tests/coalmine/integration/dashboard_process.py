"""``kubectl coalmine dashboard`` as a person runs it: the installed plugin in its own process,
a real uvicorn on a real port, read through HTTP and through headless Chromium."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from e2e.devcluster import PRODUCT_PYTHONPATH
from e2e.devcluster.process import ManagedProcess, free_port, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


class DashboardProcess:
    def __init__(self, kubeconfig: Path, workdir: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        plugin = Path(sys.executable).parent / "kubectl-coalmine"
        argv = ["/usr/bin/env", f"PYTHONPATH={PRODUCT_PYTHONPATH}", str(plugin), "dashboard"]
        argv += ["--kubeconfig", str(kubeconfig), "--port", str(self.port), "--interval", "1"]
        self.process = ManagedProcess("dashboard", [*argv, *extra], workdir / "dashboard.log")
        self.http = httpx.Client(base_url=self.url, timeout=30, trust_env=False)

    def __enter__(self) -> DashboardProcess:
        self.process.start()
        wait_until(
            lambda: self.http.get("/api/deployments").json()["polledAt"],
            timeout=30,
            what="the dashboard to answer",
            process=self.process,
        )
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()
        self.process.stop()

    def json(self, path: str, status: int = 200) -> Any:
        answer = self.http.get(path)
        assert answer.status_code == status, (path, answer.status_code, answer.text)
        return answer.json()

    def row(self, namespace: str, name: str) -> dict[str, Any] | None:
        items = self.json("/api/deployments")["items"]
        return next((i for i in items if (i["namespace"], i["name"]) == (namespace, name)), None)

    def detail(self, namespace: str, name: str) -> dict[str, Any]:
        detail: dict[str, Any] = self.json(f"/api/deployments/{namespace}/{name}")
        return detail

    def page_url(self, namespace: str, name: str) -> str:
        return f"{self.url}#/{namespace}/{name}"


def chromium(url: str, *args: str, budget_ms: int = 6000, cwd: Path | None = None) -> str:
    """Open ``url`` in headless Chromium (Debian's package), let the page's script run for
    ``budget_ms`` of virtual time, and return what Chromium printed (``--dump-dom``: the
    rendered DOM)."""
    assert Path(CHROMIUM).exists(), "needs Debian's chromium: e2e/cluster/install-deps.sh"
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        argv = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        argv += [f"--virtual-time-budget={budget_ms}", *args, url]
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=120, cwd=cwd, check=False
        )
    assert result.returncode == 0, f"chromium: {result.returncode}\n{result.stderr[-3000:]}"
    return result.stdout


def rendered_dom(url: str) -> str:
    return chromium(url, "--dump-dom")


def screenshot(url: str, path: Path, size: str = "1280,1500") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    chromium(url, f"--screenshot={path}", f"--window-size={size}")
    assert path.stat().st_size > 10_000, "the screenshot is (nearly) empty"
