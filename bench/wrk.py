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


def pool_script(path: Path, bodies: Path, fresh: bool, expect: str | None = None) -> Path:
    """POST each line of ``bodies`` once, in order: for requests that must differ (every label
    joins only once). ``fresh`` sends ``Connection: close``, so each request opens a new
    connection. A response counts as bad unless it is a 200 whose body contains ``expect``.
    ``done`` prints ``pool: answered=N bad=N wrapped=N`` (see :func:`parse_pool`): wrapped
    means the lines ran out and were sent again, so those answers are duplicates.
    """
    connection = '["Connection"] = "close", ' if fresh else ""
    needle = "nil" if expect is None else _lua_string(expect)
    text = f"""
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args)
  requests, sent, answered, bad, wrapped = {{}}, 0, 0, 0, 0
  local headers = {{{connection}["Content-Type"] = "application/json"}}
  for line in io.lines({_lua_string(str(bodies.resolve()))}) do
    requests[#requests + 1] = wrk.format("POST", nil, headers, line)
  end
end
function request()
  sent = sent + 1
  if sent > #requests then wrapped = wrapped + 1 end
  return requests[(sent - 1) % #requests + 1]
end
local expect = {needle}
function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 or (expect and not string.find(body, expect, 1, true)) then bad = bad + 1 end
end
function done(_summary, _latency, _requests)
  local answered, bad, wrapped = 0, 0, 0
  for _, thread in ipairs(threads) do
    answered = answered + thread:get("answered")
    bad = bad + thread:get("bad")
    wrapped = wrapped + thread:get("wrapped")
  end
  io.write(string.format("pool: answered=%d bad=%d wrapped=%d\\n", answered, bad, wrapped))
end
"""
    path.write_text(text)
    return path


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class PoolCheck:
    answered: int
    bad: int  # not 200, or 200 without the expected text (a batch that did not fully join)
    wrapped: int  # requests sent after the pool ran out: the run needs a bigger pool


def parse_pool(out: str) -> PoolCheck:
    match = re.search(r"^pool: answered=(\d+) bad=(\d+) wrapped=(\d+)$", out, re.M)
    if not match:
        raise ValueError(f"no pool line in wrk output:\n{out}")
    return PoolCheck(*(int(group) for group in match.groups()))


def run_wrk(url: str, script: Path, connections: int, seconds: float, core: int) -> WrkResult:
    return parse(wrk_output(url, script, connections, seconds, core))


def wrk_output(url: str, script: Path, connections: int, seconds: float, core: int) -> str:
    cmd = [*priority(), "taskset", "-c", str(core), "wrk", "-t1", f"-c{connections}"]
    cmd.append(f"-d{round(seconds)}s")
    cmd += ["--latency", "-s", str(script), url]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


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
