"""What every serving benchmark shares: pinned server processes, readiness, interleaved wrk runs.

The server under test runs on core 0 and the load generator on core 1, so neither steals the
other's CPU; A and B alternate round by round, so drift on the machine hits both sides alike.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

from bench.wrk import WrkResult, priority, run_wrk

SERVER_CORE, CLIENT_CORE = 0, 1
CACHE = Path(os.environ.get("COALMINE_BENCH_CACHE", Path.home() / ".cache" / "coalmine-bench"))


def start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [*priority(), "taskset", "-c", str(SERVER_CORE), *cmd], stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )  # fmt: skip


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(20)
    procs.clear()


def interleave(
    urls: dict[str, str], script: Path, conns: int, seconds: float, rounds: int
) -> dict[str, list[WrkResult]]:
    """ABAB...: drift on the machine hits both sides equally."""
    results: dict[str, list[WrkResult]] = {name: [] for name in urls}
    for url in urls.values():  # warm-up, not recorded
        run_wrk(url, script, conns, 2, CLIENT_CORE)
    for _ in range(rounds):
        for name, url in urls.items():
            results[name].append(run_wrk(url, script, conns, seconds, CLIENT_CORE))
    return results
