"""Serving benchmarks B1-B3: one command, A and B interleaved, server and wrk on separate cores.

    bench/run.sh            # or: python -m bench.serving --seconds 10 --rounds 5

B1  our server (trivial model) vs a bare Starlette route returning the same bytes, c=32.
B2  our server vs MLServer (own virtualenv) on the same scikit-learn model and V2 request,
    1 worker each, c = 1, 8, 64.
B3  our p50 at c=1 minus the in-process predict p50 for the same row.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench import mlserver_peer, report
from bench.wrk import WrkResult, lua_script, priority, run_wrk

SERVER_CORE, CLIENT_CORE = 0, 1
CACHE = Path(os.environ.get("COALMINE_BENCH_CACHE", Path.home() / ".cache" / "coalmine-bench"))
BODY = (
    b'{"id":"bench","inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP32",'
    b'"data":[5.1,3.5,1.4,0.2]}]}'
)
ROW = [[5.1, 3.5, 1.4, 0.2]]


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


def predict_p50_ms(model: Path, sha: str) -> float:
    import numpy as np

    from coalmine_serving.runtimes import load_runtime
    from coalmine_serving.settings import load_settings

    settings = load_settings(model_uri=str(model), model_format="skops", sha256=sha)
    runtime = load_runtime(settings).runtime
    row = np.asarray(ROW, dtype=runtime.signature.dtype)
    timings = []
    for _ in range(3000):
        started = time.perf_counter()
        runtime.predict(row)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--skip-mlserver", action="store_true")
    args = parser.parse_args()
    args.loadavg_start = report._loadavg()
    work = CACHE / "run"
    work.mkdir(parents=True, exist_ok=True)
    model, sha = mlserver_peer.build_model(work)
    script = lua_script(work / "post.lua", BODY)
    procs: list[subprocess.Popen[bytes]] = []
    py = sys.executable
    try:
        ports = {
            name: 18100 + i for i, name in enumerate(["trivial", "starlette", "ours", "mlserver"])
        }
        procs.append(
            start(
                [py, "-m", "bench.servers", "ours-trivial", str(ports["trivial"])],
                work / "trivial.log",
            )
        )
        wait_ready(f"http://127.0.0.1:{ports['trivial']}/v2/health/ready", procs[-1])
        trivial_url = f"http://127.0.0.1:{ports['trivial']}/v2/models/iris/infer"
        same_bytes = httpx.post(trivial_url, content=BODY).content
        (work / "response.json").write_bytes(same_bytes)
        procs.append(
            start(
                [
                    py,
                    "-m",
                    "bench.servers",
                    "starlette",
                    str(ports["starlette"]),
                    str(work / "response.json"),
                ],
                work / "starlette.log",
            )
        )
        starlette_url = f"http://127.0.0.1:{ports['starlette']}/v2/models/iris/infer"
        wait_ready_post(starlette_url, procs[-1])
        assert httpx.post(starlette_url, content=BODY).content == same_bytes
        b1 = interleave(
            {"ours": trivial_url, "starlette": starlette_url}, script, 32, args.seconds, args.rounds
        )
        for proc in procs:
            proc.terminate()
        procs.clear()

        procs.append(
            start(
                [py, "-m", "bench.servers", "ours-model", str(ports["ours"]), str(model), sha],
                work / "ours.log",
            )
        )
        wait_ready(f"http://127.0.0.1:{ports['ours']}/v2/health/ready", procs[-1])
        urls = {"ours": f"http://127.0.0.1:{ports['ours']}/v2/models/iris/infer"}
        if not args.skip_mlserver:
            procs.append(mlserver_peer.start(work, ports["mlserver"], start))
            wait_ready(f"http://127.0.0.1:{ports['mlserver']}/v2/health/ready", procs[-1])
            urls["mlserver"] = f"http://127.0.0.1:{ports['mlserver']}/v2/models/iris/infer"
            reply = httpx.post(urls["mlserver"], content=BODY)
            assert reply.status_code == 200, reply.text
        b2 = {c: interleave(urls, script, c, args.seconds, args.rounds) for c in (1, 8, 64)}
        fixed = fixed_rate(urls, b2[8], work, args) if "mlserver" in urls else None
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(20)
    p50 = predict_p50_ms(model, sha)
    raw = {"b1": b1, "b2": b2, "fixed": fixed, "predict_p50_ms": p50}
    (work / "results.json").write_text(json.dumps(raw, default=vars, indent=1))  # for re-analysis
    text = report.render(b1, b2, p50, args, fixed)
    args.out.write_text(text)
    print(text)


def fixed_rate(
    urls: dict[str, str],
    closed_loop: dict[str, list[WrkResult]],
    work: Path,
    args: argparse.Namespace,
) -> tuple[float, dict[str, list[WrkResult]]]:
    """p99 at the same offered load for both (70% of MLServer's c=8 capacity).

    Closed-loop p99 punishes the faster server: it completes more requests in the same time
    and so meets more of the machine's hiccups. At a fixed rate both see the same work.
    """
    rate = 0.7 * statistics.median(r.rps for r in closed_loop["mlserver"])
    conns = 8
    script = lua_script(work / "post-fixed.lua", BODY, delay_ms=conns * 1000 / rate)
    return rate, interleave(urls, script, conns, args.seconds, args.rounds)


def wait_ready_post(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        try:
            if httpx.post(url, content=BODY, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(url)


if __name__ == "__main__":
    main()
