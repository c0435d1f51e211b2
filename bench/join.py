"""Benchmarks of the label join (issue 12): what receipts cost and how fast labels come back in.

    python -m bench.serving --only B4,B5 --seconds 5 --rounds 3

B4  The join path's cost per prediction: our server against the same server with the receipt
    step removed (``bench.servers *-noreceipt``), c=1, on the trivial model with 1 and with 100
    rows (a receipt carries every row's output) and on B2's iris model with 1 row.
B5  Labels/s one server process (one pod, one core) joins: batches of 1,000 labels, each POST on
    a fresh connection, against the same server taking 1 label per POST (on kept-alive and on
    fresh connections). Receipts are real: signed in this process with the keys file the server
    is started with, so the server verifies every one, and each is sent once (a label joins only
    once; a repeat gets 409). A batch counts only if it answers ``"joined": 1000``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from bench.harness import CLIENT_CORE, interleave, start, stop, wait_ready
from bench.report import loadavg
from bench.wrk import WrkResult, lua_script, parse, parse_pool, pool_script, wrk_output

MODEL = "iris"
B4_ROWS = (1, 100)
BATCH = 1000
B5_CONNS = 4  # enough requests queued that the server never waits for the client
POOL_MARGIN = 1.5  # labels signed per run: the fastest rate seen so far times this margin
KEY_ID = "kbench"


def write_keys(path: Path) -> Path:
    """A receipt keys file as the operator's Secret holds it (one key, active since 2020)."""
    secret = base64.b64encode(os.urandom(32)).decode()
    keys = {"keys": [{"id": KEY_ID, "secret": secret, "activeFrom": "2020-01-01T00:00:00Z"}]}
    path.write_bytes(orjson.dumps(keys))
    return path


def v2_body(rows: int) -> bytes:
    data = [5.1, 3.5, 1.4, 0.2] * rows
    doc = {"inputs": [{"name": "input-0", "shape": [rows, 4], "datatype": "FP32", "data": data}]}
    return orjson.dumps(doc)


# --- B4: the receipt's cost per prediction ---


@dataclass(frozen=True)
class B4Case:
    title: str
    server: str  # bench.servers kind, without -noreceipt
    rows: int


@dataclass
class B4Result:
    cases: dict[str, dict[str, list[WrkResult]]]  # case title -> side -> rounds
    receipt_us: dict[int, float]  # rows -> receipt_for alone in a tight loop, p50 µs
    request_cpu_us: dict[int, dict[str, float]]  # rows -> side -> CPU µs per in-process request
    load: tuple[str, str]  # load average at the start and at the end


B4_CASES = [
    B4Case("trivial model, 1 row", "ours-trivial", 1),
    B4Case("trivial model, 100 rows", "ours-trivial", 100),
    B4Case("iris (skops), 1 row", "ours-model", 1),
]
SIDES = {"receipt": "", "no receipt": "-noreceipt"}


def run_b4(work: Path, model: Path, sha: str, seconds: float, rounds: int) -> B4Result:
    load_start = loadavg()
    kinds = sorted({case.server + suffix for case in B4_CASES for suffix in SIDES.values()})
    ports = {kind: 18120 + i for i, kind in enumerate(kinds)}
    # Signing keys from a file, as in a pod (the server then re-checks the file every 5 s).
    keys = write_keys(work / "receipt-keys.json")
    env = {
        "COALMINE_SERVING_RECEIPT_KEYS_FILE": str(keys),
        # Up to 32 rows predict inline on every server here: left to judge for itself, one of a
        # pair may move to worker threads when the machine is busy, and that switch would
        # show up as a difference the receipt did not make.
        "COALMINE_SERVING_INLINE_PREDICT_MAX_SECONDS": "0.01",
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for kind, port in ports.items():
            extra = [str(model), sha] if kind.startswith("ours-model") else []
            cmd = [sys.executable, "-m", "bench.servers", kind, str(port), *extra]
            procs.append(start(cmd, work / f"{kind}.log", env))
            wait_ready(f"http://127.0.0.1:{port}/v2/health/ready", procs[-1])
        cases = {}
        for case in B4_CASES:
            urls = {
                side: f"http://127.0.0.1:{ports[case.server + suffix]}/v2/models/{MODEL}/infer"
                for side, suffix in SIDES.items()
            }
            body = v2_body(case.rows)
            check_receipts(urls, body)
            script = lua_script(work / f"b4-{case.rows}.lua", body)
            cases[case.title] = interleave(urls, script, 1, seconds, rounds)
    finally:
        stop(procs)
    load = (load_start, loadavg())
    signing = {rows: receipt_us(rows, keys) for rows in B4_ROWS}
    cpu = {rows: asyncio.run(request_cpu_us(rows, keys)) for rows in B4_ROWS}
    return B4Result(cases, signing, cpu, load)


def check_receipts(urls: dict[str, str], body: bytes) -> None:
    """The peer differs from our server only in the receipt: with one, and without."""
    for side, url in urls.items():
        reply = httpx.post(url, content=body)
        assert reply.status_code == 200, reply.text
        receipt = reply.json()["parameters"]["receipt"]
        assert bool(receipt) == (side == "receipt"), f"{side}: receipt {receipt!r}"


def receipt_us(rows: int, keys: Path) -> float:
    """In-process p50 of signing one prediction's receipt: the part of B4 that is ours alone."""
    from coalmine_serving.metrics import ServingMetrics
    from coalmine_serving.service.feedback import FeedbackJoiner
    from coalmine_serving.settings import Task, load_settings

    settings = load_settings(model_name=MODEL, receipt_keys_file=keys)
    joiner = FeedbackJoiner(settings, ServingMetrics(settings))
    outputs = np.zeros(rows, dtype=np.int64)
    return _p50_us(lambda: joiner.receipt_for(outputs, Task.CLASSIFICATION), 20_000)


async def request_cpu_us(rows: int, keys: Path, rounds: int = 40) -> dict[str, float]:
    """CPU time per inference request with and without the receipt, the app called in-process
    (no sockets, no client): the cost wrk's p50 shows blurred by the machine's noise.

    Many short rounds, alternated, and the difference is the median of per-round differences,
    so drift on a busy machine cancels out; process time, so a 100-row predict on a worker
    thread counts too. The receipt costs more here than :func:`receipt_us` says (most
    likely the rest of a request pushes its code and data out of the CPU caches).
    """
    from bench.servers import TrivialRuntime, ours, without_receipts

    def app() -> Any:
        return ours(1, TrivialRuntime(), receipt_keys_file=keys, inline_predict_max_seconds=0.01)

    apps = {"receipt": app(), "no receipt": without_receipts(app())}
    body = v2_body(rows)
    scope = {"type": "http", "method": "POST", "path": f"/v2/models/{MODEL}/infer",
             "headers": [(b"content-length", str(len(body)).encode())]}  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    times = 1000 if rows == 1 else 200
    cpu: dict[str, list[float]] = {side: [] for side in apps}
    async with contextlib.AsyncExitStack() as stack:
        for server in apps.values():
            await stack.enter_async_context(server.router.lifespan_context(server))
            while not server.state.service.predictor.ready:
                await asyncio.sleep(0.05)
        for _ in range(rounds):
            for side, server in apps.items():
                started = time.process_time()
                for _ in range(times):
                    await server(scope, receive, send)
                cpu[side].append((time.process_time() - started) / times * 1e6)
    result = {side: statistics.median(values) for side, values in cpu.items()}
    pairs = zip(cpu["receipt"], cpu["no receipt"], strict=True)
    result["difference"] = statistics.median(a - b for a, b in pairs)
    return result


def _p50_us(call: Callable[[], object], times: int) -> float:
    timings = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1e6


# --- B5: label ingestion ---


@dataclass(frozen=True)
class LabelSide:
    labels: int  # per POST
    fresh: bool  # a new connection for every POST
    guess: float  # requests/s to sign receipts for in the first run; later runs use the rate seen


B5_SIDES = {
    "batch 1,000, fresh connections": LabelSide(BATCH, fresh=True, guess=30),
    "single, kept-alive connections": LabelSide(1, fresh=False, guess=3000),
    "single, fresh connections": LabelSide(1, fresh=True, guess=2000),
}


@dataclass
class B5Result:
    sides: dict[str, list[WrkResult]]
    labels_per_post: dict[str, int]
    answered: dict[str, int]  # requests checked over all recorded rounds (every one joined)
    join_us: float  # in-process join_batch cost per label, µs: the CPU ceiling over HTTP
    load: tuple[str, str]  # load average at the start and at the end
    connections: int = B5_CONNS


@dataclass
class LabelPools:
    """Signs receipts as the server's pod would, and writes each run its own unused ones."""

    work: Path
    keys_file: Path
    rate: dict[str, float] = field(default_factory=dict)  # fastest requests/s seen per side

    def __post_init__(self) -> None:
        from coalmine_serving.service.receipts import KeyRing, Origin, ReceiptBook

        write_keys(self.keys_file)
        # The receipt a trivial-model pod with default settings would issue for a 1-row request.
        self.book = ReceiptBook(KeyRing(self.keys_file), MODEL, Origin("1", "stable", ""))

    def write(self, side: LabelSide, requests: int) -> Path:
        path = self.work / "b5-pool.txt"
        with path.open("wb") as out:
            for _ in range(requests):
                labels = [self.label(i) for i in range(side.labels)]
                body = {"labels": labels} if side.labels > 1 else labels[0]
                out.write(orjson.dumps(body) + b"\n")
        return path

    def label(self, i: int) -> dict[str, Any]:
        # The trivial model predicts class 0; a third of the labels say 1 (counted incorrect).
        return {"receipt": self.book.issue([0], True), "truth": int(i % 3 == 0)}


def run_b5(work: Path, seconds: float, rounds: int) -> B5Result:
    load_start = loadavg()
    pools = LabelPools(work, work / "receipt-keys.json")
    port = 18130
    env = {"COALMINE_SERVING_RECEIPT_KEYS_FILE": str(pools.keys_file)}
    cmd = [sys.executable, "-m", "bench.servers", "ours-trivial", str(port)]
    procs = [start(cmd, work / "b5-server.log", env)]
    base = f"http://127.0.0.1:{port}/v2/models/{MODEL}"
    try:
        wait_ready(f"http://127.0.0.1:{port}/v2/health/ready", procs[0])
        check_joins(base, pools)
        sides: dict[str, list[WrkResult]] = {name: [] for name in B5_SIDES}
        answered = dict.fromkeys(B5_SIDES, 0)
        for name, side in B5_SIDES.items():  # warm-up, not recorded; also measures the rate
            pools.rate[name] = side.guess
            label_run(base, pools, name, side, 2)
        for _ in range(rounds):
            for name, side in B5_SIDES.items():
                result, checked = label_run(base, pools, name, side, seconds)
                sides[name].append(result)
                answered[name] += checked
    finally:
        stop(procs)
    labels = {name: side.labels for name, side in B5_SIDES.items()}
    load = (load_start, loadavg())
    return B5Result(sides, labels, answered, join_us(pools), load)


def check_joins(base: str, pools: LabelPools) -> None:
    """Receipts the server issued and receipts signed here join alike; a repeat is refused."""
    reply = httpx.post(f"{base}/infer", content=v2_body(1))
    issued = reply.json()["parameters"]["receipt"]
    assert issued.startswith(KEY_ID + "."), issued
    signed = pools.book.issue([0], True)
    for receipt, status in ((issued, 200), (signed, 200), (signed, 409)):
        answer = httpx.post(f"{base}/feedback", json={"receipt": receipt, "truth": 0})
        assert answer.status_code == status, (status, answer.text)


def label_run(
    base: str, pools: LabelPools, name: str, side: LabelSide, seconds: float
) -> tuple[WrkResult, int]:
    """One wrk run on fresh receipts; signs more and runs again if the pool ran out."""
    for _ in range(4):
        requests = math.ceil(pools.rate[name] * seconds * POOL_MARGIN) + 2 * B5_CONNS
        bodies = pools.write(side, requests)
        expect = f'"joined":{side.labels},' if side.labels > 1 else None
        script = pool_script(bodies.with_suffix(".lua"), bodies, side.fresh, expect)
        out = wrk_output(f"{base}/feedback", script, B5_CONNS, seconds, CLIENT_CORE)
        result, check = parse(out), parse_pool(out)
        if check.wrapped:  # repeats are refused as duplicates: not a valid run; sign more, redo
            pools.rate[name] = max(pools.rate[name] * 2, result.rps)
            continue
        pools.rate[name] = max(pools.rate[name], result.rps)
        if check.bad or result.errors:
            raise RuntimeError(f"B5 {name}: {check.bad} of {check.answered} POSTs did not join")
        return result, check.answered
    raise RuntimeError(f"B5 {name}: the receipt pool kept running out")


def join_us(pools: LabelPools) -> float:
    """In-process CPU per label of ``join_batch`` (verify, dedupe, count), µs: the median of
    20 batches, in CPU time, so other processes on the machine move it little."""
    from coalmine_serving.metrics import ServingMetrics
    from coalmine_serving.service.feedback import FeedbackJoiner
    from coalmine_serving.settings import load_settings

    settings = load_settings(model_name=MODEL, receipt_keys_file=pools.keys_file)
    joiner = FeedbackJoiner(settings, ServingMetrics(settings))
    timings = []
    for _ in range(20):
        batch = [pools.label(i) for i in range(BATCH)]
        started = time.process_time()
        assert joiner.join_batch(batch)["joined"] == BATCH
        timings.append(time.process_time() - started)
    return statistics.median(timings) / BATCH * 1e6
