"""Serving benchmarks B1-B5: one command, A and B interleaved, server and wrk on separate cores.

    bench/run.sh            # or: python -m bench.serving --seconds 10 --rounds 5
    python -m bench.serving --only B4,B5 --seconds 5 --rounds 3     # some of them

B1  our server (trivial model) vs a bare Starlette route returning the same bytes, c=32.
B2  our server vs MLServer (own virtualenv) on the same scikit-learn model and V2 request,
    1 worker each, c = 1, 8, 64.
B3  our p50 at c=1 minus the in-process predict p50 for the same row.
B4  what a prediction's receipt costs (see bench/join.py), c=1.
B5  labels/s one server process joins, batched and one by one (see bench/join.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench import join, mlserver_peer, report
from bench.harness import CACHE, interleave, start, stop, wait_ready
from bench.wrk import WrkResult, lua_script

BODY = (
    b'{"id":"bench","inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP32",'
    b'"data":[5.1,3.5,1.4,0.2]}]}'
)
ROW = [[5.1, 3.5, 1.4, 0.2]]


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
    parser.add_argument(
        "--only", type=_groups, default=_groups(",".join(GROUPS)),
        help="comma-separated: B1,B2,B3 (these run together), B4, B5; the report keeps the "
        "sections of the others as they are",
    )  # fmt: skip
    args = parser.parse_args()
    args.loadavg_start = report.loadavg()
    work = CACHE / "run"
    work.mkdir(parents=True, exist_ok=True)
    model, sha = mlserver_peer.build_model(work)
    raw: dict[str, object] = {}
    if "B1" in args.only:
        text = run_b1_to_b3(work, model, sha, args, raw)
    else:
        text = args.out.read_text() if args.out.exists() else "# Serving benchmarks\n"
    if "B4" in args.only:
        b4 = join.run_b4(work, model, sha, args.seconds, args.rounds)
        raw["b4"] = b4
        text = report.replace_section(text, report.render_b4(b4, args))
    if "B5" in args.only:
        b5 = join.run_b5(work, args.seconds, args.rounds)
        raw["b5"] = b5
        text = report.replace_section(text, report.render_b5(b5, args))
    (work / "results.json").write_text(json.dumps(raw, default=vars, indent=1))  # re-analysis
    args.out.write_text(text)
    print(text)


GROUPS = ("B1", "B2", "B3", "B4", "B5")


def _groups(text: str) -> set[str]:
    names = {name.strip().upper() for name in text.split(",") if name.strip()}
    if unknown := names - set(GROUPS):
        raise argparse.ArgumentTypeError(
            f"unknown benchmark(s) {sorted(unknown)}: pick from {GROUPS}"
        )
    if names & {"B1", "B2", "B3"} and not {"B1", "B2", "B3"} <= names:
        raise argparse.ArgumentTypeError("B1, B2 and B3 run and report together: name all three")
    return names


def run_b1_to_b3(
    work: Path, model: Path, sha: str, args: argparse.Namespace, raw: dict[str, object]
) -> str:
    """B1-B3 as the whole report (header, sections, notes) for B4/B5 to be put into."""
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
        stop(procs)

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
        stop(procs)
    p50 = predict_p50_ms(model, sha)
    raw.update({"b1": b1, "b2": b2, "fixed": fixed, "predict_p50_ms": p50})
    return report.render(b1, b2, p50, args, fixed)


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
