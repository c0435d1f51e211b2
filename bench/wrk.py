"""Run Debian's wrk pinned to a core and parse its --latency output."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx responses plus socket errors: a run with errors is not comparable


def lua_script(path: Path, body: bytes, delay_ms: float | None = None) -> Path:
    """POST ``body``; with ``delay_ms`` each connection waits that long between requests,
    so a run offers a fixed rate (connections * 1000 / delay_ms req/s) to either server."""
    escaped = body.decode().replace("\\", "\\\\").replace('"', '\\"')
    text = f'wrk.method = "POST"\nwrk.body = "{escaped}"\n'
    text += 'wrk.headers["Content-Type"] = "application/json"\n'
    if delay_ms is not None:
        text += f"function delay() return {delay_ms:.3f} end\n"
    path.write_text(text)
    return path


def run_wrk(url: str, script: Path, connections: int, seconds: float, core: int) -> WrkResult:
    cmd = [*priority(), "taskset", "-c", str(core), "wrk", "-t1", f"-c{connections}"]
    cmd.append(f"-d{round(seconds)}s")
    cmd += ["--latency", "-s", str(script), url]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return parse(out)


def priority() -> list[str]:
    """Run servers and wrk at a raised priority when allowed (root), so other work on a shared
    machine preempts the measurement less; both sides of every pair get the same priority."""
    nice = os.environ.get("COALMINE_BENCH_NICE", "-10")
    return ["nice", "-n", nice] if os.geteuid() == 0 and nice != "0" else []


def parse(out: str) -> WrkResult:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    errors += sum(int(g) for g in sock.groups()) if sock else 0
    return WrkResult(rps, _percentile(out, "50"), _percentile(out, "99"), errors)


def _percentile(out: str, pct: str) -> float:
    match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if not match:
        raise ValueError(f"no {pct}% line in wrk output:\n{out}")
    return float(match.group(1)) * _UNITS[match.group(2)]
