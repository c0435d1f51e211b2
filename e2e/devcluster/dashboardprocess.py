"""``kubectl coalmine dashboard`` as a person runs it: the installed plugin in its own process,
a real uvicorn on a real port, read through HTTP and through headless Chromium. Shared by the
integration tier (tests/coalmine/integration/test_dashboard.py) and the e2e tier
(e2e/test_views.py)."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
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
    """``kubectl-coalmine dashboard``; with ``kubectl`` (a kubectl binary), ``kubectl coalmine
    dashboard`` through kubectl's plugin lookup on PATH, as users type it."""

    def __init__(
        self, kubeconfig: Path, workdir: Path, *extra: str, kubectl: Path | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        bin_dir = Path(sys.executable).parent
        argv = ["/usr/bin/env", f"PYTHONPATH={PRODUCT_PYTHONPATH}"]
        if kubectl is None:
            argv += [str(bin_dir / "kubectl-coalmine"), "dashboard"]
        else:
            argv += [f"PATH={bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"]
            argv += [str(kubectl), "coalmine", "dashboard"]
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

    def detail_when(
        self,
        namespace: str,
        name: str,
        holds: Callable[[dict[str, Any]], Any],
        what: str,
        timeout: float = 90,
    ) -> dict[str, Any]:
        """The detail once ``holds`` is true of it; on a timeout, the last one seen is shown."""
        seen: list[dict[str, Any]] = []

        def probe() -> dict[str, Any] | None:
            seen[:] = [self.detail(namespace, name)]
            return seen[0] if holds(seen[0]) else None

        try:
            return wait_until(probe, timeout=timeout, what=what, interval=0.2, process=self.process)
        except TimeoutError as error:
            raise AssertionError(f"{error}; the dashboard last showed: {seen}") from error


def judged(detail: dict[str, Any], check: str) -> bool:
    """Whether the operator's last analysis judged ``check`` with a value and a threshold (a
    look with too few samples for the confidence sequence is inconclusive and shows neither)."""
    checks = (detail.get("analysis") or {}).get("checks") or []
    return any(
        c["name"] == check and c.get("value") is not None and c.get("threshold") for c in checks
    )


def charted(detail: dict[str, Any], check: str) -> list[float]:
    """The canary's values of ``check`` on the detail's chart (Prometheus' numbers)."""
    chart = next(c for c in detail["checkSeries"]["charts"] if c["name"] == check)
    return [p["canary"] for p in chart["points"] if p["canary"] is not None]


def text_of(dom: str, pattern: str) -> str:
    """The text of the first element matching ``pattern`` (its tags stripped)."""
    found = re.search(pattern, dom, re.S)
    assert found, f"{pattern} not in the rendered page:\n{dom[:4000]}"
    return html.unescape(re.sub(r"<[^>]+>", " ", found.group(0)))


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


def rendered_dom_when(
    url: str, shows: Callable[[str], bool], what: str, timeout: float = 90
) -> str:
    """The rendered page once ``shows`` holds of it. The operator looks again every interval,
    and a look may be inconclusive (a failing canary whose bound has not yet cleared the
    limit shows no value) just after the one a test waited for on the API: the page is
    rendered again until it shows the state, not once."""
    seen = [""]

    def probe() -> str | None:
        seen[0] = rendered_dom(url)
        return seen[0] if shows(seen[0]) else None

    try:
        return wait_until(probe, timeout=timeout, what=what, interval=0.5)
    except TimeoutError as error:
        raise AssertionError(f"{error}; the page last showed:\n{seen[0][:4000]}") from error


def check_shows_value_and_limit(dom: str, check: str, limit: str) -> bool:
    """Whether the page's row of ``check`` has a measured value (its ``value`` cell) and a
    threshold naming ``limit`` (its ``threshold`` cell); an inconclusive look shows neither."""
    found = re.search(rf'<tr data-check="{check}">.*?</tr>', dom, re.S)
    row = found.group(0) if found else ""
    value = re.search(r'<td class="value">\s*\d[^<]*</td>', row)  # "-" when not measured
    threshold = re.search(r'<td class="threshold">([^<]*)</td>', row)
    return bool(value and threshold and limit in html.unescape(threshold.group(1)))


def screenshot(url: str, path: Path, size: str = "1280,1500") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    chromium(url, f"--screenshot={path}", f"--window-size={size}")
    assert path.stat().st_size > 10_000, "the screenshot is (nearly) empty"
