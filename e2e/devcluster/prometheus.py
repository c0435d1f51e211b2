"""A real Prometheus server (Debian's `prometheus` binary) as a plain process for tests.

Targets are file-based service discovery: `set_targets` rewrites a JSON file the running server
watches, so a test can point Prometheus at servers it starts later, without a restart. The data
directory survives `stop()`/`start()`, so a test can take Prometheus away mid-analysis and bring
it back with its history.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import yaml

from e2e.devcluster.process import ManagedProcess, free_port, wait_until

SCRAPE_INTERVAL = "1s"


def find_prometheus() -> str:
    """$COALMINE_PROMETHEUS, else `prometheus` on PATH (see e2e/cluster/install-deps.sh)."""
    found = os.environ.get("COALMINE_PROMETHEUS") or shutil.which("prometheus")
    if not found:
        raise FileNotFoundError(
            "prometheus not found: run e2e/cluster/install-deps.sh or set COALMINE_PROMETHEUS"
        )
    return found


class PrometheusServer:
    """Prometheus on a free loopback port, scraping every second whatever `set_targets` names."""

    def __init__(self, workdir: Path, *, binary: str | None = None, port: int | None = None):
        self.workdir = workdir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._targets_dir = workdir / "targets"
        self._config_path = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"
        self._process = ManagedProcess(
            "prometheus",
            [
                binary or find_prometheus(),
                f"--config.file={self._config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--log.level=info",
            ],
            self.log_path,
            cwd=workdir,
        )
        self._http = httpx.Client(base_url=self.url, timeout=5.0)

    def start(self, timeout: float = 30.0) -> None:
        self._targets_dir.mkdir(parents=True, exist_ok=True)
        self._config_path.write_text(yaml.safe_dump(self._config()))
        self._process.start()
        wait_until(self._ready, timeout=timeout, what="Prometheus /-/ready", process=self._process)

    def stop(self) -> None:
        self._process.stop()

    def close(self) -> None:
        """Stop the server and release the HTTP client; the object is unusable afterwards."""
        self.stop()
        self._http.close()

    @property
    def process(self) -> ManagedProcess:
        return self._process

    @property
    def running(self) -> bool:
        return self._process.running

    def set_targets(
        self, targets: list[str], job: str = "coalmine", labels: dict[str, str] | None = None
    ) -> None:
        """Scrape `targets` ("host:port", path /metrics) under `job`, replacing that job's list.

        Discovery picks the change up within a few seconds (Prometheus throttles target
        updates to one per 5 s); use `wait_for` rather than sleeping.
        """
        group = {"targets": list(targets), "labels": {**(labels or {}), "job": job}}
        path = self._targets_dir / f"{job}.json"
        staging = path.with_suffix(".json.tmp")
        # Write-then-rename: Prometheus must never read a half-written target file.
        staging.write_text(json.dumps([group] if targets else []))
        staging.replace(path)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; returns the result list (each item has "metric" and "value")."""
        response = self._http.get("/api/v1/query", params={"query": promql})
        body = response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"query {promql!r} failed: {body.get('error', body)}")
        result: list[dict[str, Any]] = body["data"]["result"]
        if body["data"]["resultType"] != "vector":
            raise ValueError(f"query {promql!r} is not an instant vector")
        return result

    def wait_for(self, promql: str, timeout: float = 30) -> list[dict[str, Any]]:
        """Poll `promql` until it returns a non-empty vector; TimeoutError shows the targets."""
        try:
            return wait_until(
                lambda: self.query(promql) or None,
                timeout=timeout,
                what=f"a result for {promql!r}",
                interval=0.25,
                process=self._process,
            )
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\nscrape targets: {self.targets_health()}") from exc

    def targets_health(self) -> list[dict[str, Any]]:
        """Active targets with their health and last scrape error, for diagnostics."""
        response = self._http.get("/api/v1/targets", params={"state": "active"})
        return [
            {key: target.get(key) for key in ("scrapeUrl", "health", "lastError")}
            for target in response.json()["data"]["activeTargets"]
        ]

    def _ready(self) -> bool | None:
        return True if self._http.get("/-/ready").status_code == 200 else None

    def _config(self) -> dict[str, Any]:
        return {
            "global": {
                "scrape_interval": SCRAPE_INTERVAL,
                "scrape_timeout": SCRAPE_INTERVAL,
                "evaluation_interval": SCRAPE_INTERVAL,
            },
            "scrape_configs": [
                {
                    # The job label comes from each target file (set_targets' `job`), which
                    # overrides this default job_name.
                    "job_name": "file_sd",
                    "file_sd_configs": [
                        {"files": [str(self._targets_dir / "*.json")], "refresh_interval": "1s"}
                    ],
                }
            ],
        }
