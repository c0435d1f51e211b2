"""What the hostile-client guards cost: one app, behind uvicorn's plain httptools protocol and
behind ours (``coalmine_serving.http.protocol``: header deadline and size cap, requests
counted instead of sockets, bounded close after an early reply), in interleaved wrk rounds.

    .venv/bin/python -m bench.guards [--rounds 7] [--seconds 5]
    .venv/bin/python -m bench.guards --serve plain|guarded PORT   # one side (used by the above)

Prints requests per second, p99 and errors per round and side, and the guarded/plain ratio
per round with its median (a ratio, because the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from bench import harness, wrk
from bench.servers import TrivialRuntime, ours

BODY = b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[0.9,0.1,0.1,0.1]}]}'
SIDES = {"plain": 18941, "guarded": 18942}


def serve(mode: str, port: int) -> None:
    import uvicorn

    from coalmine_serving.http.protocol import guarded_protocol

    app = ours(port, TrivialRuntime())
    http = "httptools" if mode == "plain" else guarded_protocol(app.state.service.settings)
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http=http,
                access_log=False, log_level="warning", workers=1)  # fmt: skip


def compare(rounds: int, seconds: float, workdir: Path) -> None:
    script = wrk.lua_script(workdir / "post.lua", BODY)
    procs, urls = [], {}
    for mode, port in SIDES.items():
        cmd = [sys.executable, "-m", "bench.guards", "--serve", mode, str(port)]
        procs.append(harness.start(cmd, workdir / f"{mode}.log"))
        harness.wait_ready(f"http://127.0.0.1:{port}/v2/health/ready", procs[-1])
        urls[mode] = f"http://127.0.0.1:{port}/v2/models/iris/infer"
    try:
        for conns in (32, 64):
            results = harness.interleave(urls, script, conns, seconds, rounds)
            for mode, runs in results.items():
                rps, p99 = [round(r.rps) for r in runs], [r.p99_ms for r in runs]
                print(conns, mode, "req/s", rps, "p99 ms", p99, "errors", [r.errors for r in runs])
            pairs = zip(results["plain"], results["guarded"], strict=True)
            ratios = [guarded.rps / plain.rps for plain, guarded in pairs]
            median = round(statistics.median(ratios), 3)
            rounded = [round(r, 3) for r in ratios]
            print(conns, "connections: guarded/plain req/s per round", rounded, "median", median)
    finally:
        harness.stop(procs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--serve", nargs=2, metavar=("MODE", "PORT"))
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    with tempfile.TemporaryDirectory(prefix="bench-guards-") as workdir:
        compare(args.rounds, args.seconds, Path(workdir))


if __name__ == "__main__":
    main()
