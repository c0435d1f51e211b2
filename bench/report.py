"""Turn interleaved wrk results into docs/benchmarks.md (medians, ratios, min-max).

B1-B3 make the whole document (header, sections, notes); B4 and B5 are sections of their own,
each saying when and how it was measured, put in with :func:`replace_section`, so they can be
run again alone without touching the B1-B3 figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bench.wrk import WrkResult, priority

if TYPE_CHECKING:
    from bench.join import B4Result, B5Result

NOTES = """
## What limits the figures

- **Shared machine.** The runs share 2 cores with other work (builds, API servers, test suites);
  the load average is printed at the top. Pinning and `nice -10` reduce but do not remove
  preemption, which dominates every p99 here (tens of ms, against sub-millisecond requests).
  Interleaving keeps the *ratios* fair; the min-max ranges show how much they move.
- **B1.** Per request the server does real work the bare route does not: orjson decode, building
  and checking a numpy array (shape, dtype, NaN/inf), prediction and class metrics, the feedback
  memory, a deadline timer and the response encode. Measured in-process on CPU time this is
  ~15.5 µs against ~11 µs for the Starlette route; the rest of each request (HTTP parsing, socket
  syscalls, event loop) is the same uvicorn code on both sides. The inference path already
  bypasses Starlette (middleware, routing) and the thread-pool hop, and keeps its per-request
  metrics lock-free (see docs/serving.md). What is left is mostly request validation, which
  the product needs.
- **B2.** MLServer runs with `parallel_workers: 0` (inference in the server process, its fastest
  setting for a tiny model) and with httptools installed in its venv, so the comparison is not
  won by handicapping it.
- **B3.** wrk's p50 includes the loopback round trip and the client, so the server's own
  overhead is lower than the figure shown. The iris model's predict (~0.1 ms) is near the
  inline budget (0.2 ms); on a busy machine most predicts exceed it and the server moves
  predict to worker threads for good (logged), so B2/B3 may measure either mode.
- **p99 on this machine** is set by preemption (tens of ms), not by either server; read the
  fixed-rate table and the min-max ranges before any single p99 ratio.
"""

REPRODUCE = "bench/run.sh   # = python -m bench.serving --seconds 10 --rounds 5"


def _med(runs: list[WrkResult], field: str) -> float:
    return float(statistics.median(getattr(r, field) for r in runs))


def _ratio_range(a: list[WrkResult], b: list[WrkResult], field: str) -> str:
    ratios = [getattr(x, field) / getattr(y, field) for x, y in zip(a, b, strict=True)]
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo").read().splitlines():  # noqa: SIM115, PTH123
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])  # noqa: PTH123
    except OSError:
        return "unknown"


def _wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "wrk"


def render(
    b1: dict[str, list[WrkResult]],
    b2: dict[int, dict[str, list[WrkResult]]],
    predict_p50_ms: float,
    args: argparse.Namespace,
    fixed: tuple[float, dict[str, list[WrkResult]]] | None = None,
) -> str:
    lines = [
        "# Serving benchmarks",
        "",
        f"Load average (1/5/15 min) at the start: {args.loadavg_start}; at the end: {loadavg()}.",
        "Other work on the machine slows both sides of each pair alike (interleaved), but it",
        "widens the spread; compare ratios, not absolute numbers.",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {_cpu()}, {os.cpu_count()} cores;",
        f"{_wrk_version()}; server pinned to core 0, wrk to core 1, both at nice -10;",
        f"{args.rounds} interleaved rounds",
        f"of {args.seconds:g} s per side after a 2 s warm-up. Ratios are medians of per-round",
        "ratios (min-max in brackets); absolute numbers are for orientation only.",
        "",
        "Reproduce (installs nothing into the project venv; MLServer gets its own venv under",
        "`~/.cache/coalmine-bench`):",
        "",
        f"    {REPRODUCE}",
        "",
        "## B1: framework overhead (trivial model vs bare Starlette, same bytes, c=32)",
        "",
        "| side | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    lines += [_row(name, runs) for name, runs in b1.items()]
    lines += [
        "",
        f"- req/s ratio ours/Starlette: **{_ratio_range(b1['ours'], b1['starlette'], 'rps')}**"
        " (target >= 0.80)",
        f"- p99 ratio Starlette/ours: **{_ratio_range(b1['starlette'], b1['ours'], 'p99_ms')}**"
        " (>= 0.80 means our p99 is at most 1.25x)",
        "",
        "## B2: vs MLServer on the same scikit-learn model and V2 request",
        "",
        "| c | side | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|",
    ]
    for conns, sides in b2.items():
        lines += [f"| {conns} " + _row(name, runs) for name, runs in sides.items()]
    lines.append("")
    for conns, sides in b2.items():
        if "mlserver" in sides:
            rps = _ratio_range(sides["ours"], sides["mlserver"], "rps")
            p99 = _ratio_range(sides["ours"], sides["mlserver"], "p99_ms")
            lines.append(f"- c={conns}: req/s ours/MLServer **{rps}**, p99 ours/MLServer **{p99}**")
    lines.append("- target: >= 1.5x MLServer's req/s at c=8 with p99 ratio <= 1.0")
    if fixed:
        rate, sides = fixed
        lines += [
            "",
            f"Same offered load for both, c=8 at {rate:,.0f} req/s in total (70% of MLServer's",
            "c=8 capacity; closed-loop p99 penalises the faster server, which completes more",
            "requests and so meets more of the machine's hiccups):",
            "",
            "| side | req/s | p50 ms | p99 ms | errors |",
            "|---|---|---|---|---|",
        ]
        lines += [_row(name, runs) for name, runs in sides.items()]
        p99 = _ratio_range(sides["ours"], sides["mlserver"], "p99_ms")
        lines += ["", f"- fixed-rate p99 ours/MLServer: **{p99}**"]
    ours_p50 = _med(b2[1]["ours"], "p50_ms")
    lines += [
        "",
        "## B3: distance to the compute floor (c=1)",
        "",
        f"- our p50 at c=1 (wrk, includes loopback and client): {ours_p50:.3f} ms",
        f"- in-process `predict` p50 for the same row: {predict_p50_ms:.3f} ms",
        f"- **overhead: {ours_p50 - predict_p50_ms:.3f} ms** (target <= 0.5 ms)",
        NOTES,
    ]
    return "\n".join(lines)


def _row(name: str, runs: list[WrkResult]) -> str:
    errors = sum(r.errors for r in runs)
    return (
        f"| {name} | {_med(runs, 'rps'):,.0f} | {_med(runs, 'p50_ms'):.3f} "
        f"| {_med(runs, 'p99_ms'):.3f} | {errors} |"
    )


# --- B4 and B5: sections of their own ---

NOTES_HEADING = "## What limits the figures"
ORDER = ("## B1", "## B2", "## B3", "## B4", "## B5", NOTES_HEADING)


def replace_section(doc: str, section: str) -> str:
    """Put ``section`` (from its ``## Bn:`` heading) into ``doc``: in place of the section with
    the same ``## Bn:`` heading, else before the first section that comes after it in ORDER.
    Everything else stays as it was."""
    head = section.lstrip("\n").split(":", 1)[0] + ":"
    lines = doc.rstrip("\n").split("\n")
    new = [*section.strip("\n").split("\n"), ""]
    starts = [i for i, line in enumerate(lines) if line.startswith("## ")]
    found = [i for i in starts if lines[i].startswith(head)]
    if found:
        end = next((i for i in starts if i > found[0]), len(lines))
        lines[found[0] : end] = new
    else:
        rank = ORDER.index(head.removesuffix(":"))
        after = [i for i in starts if _rank(lines[i]) > rank]
        at = after[0] if after else len(lines)
        if at and lines[at - 1]:
            new.insert(0, "")
        lines[at:at] = new
    return "\n".join(lines).rstrip("\n") + "\n"


def _rank(heading: str) -> int:
    return next((k for k, prefix in enumerate(ORDER) if heading.startswith(prefix)), -1)


def _provenance(args: argparse.Namespace, load: tuple[str, str], only: str) -> list[str]:
    nice = priority()
    wrk = " ".join(_wrk_version().split()[:2])
    return [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {_cpu()}, {os.cpu_count()} cores;",
        f"load average (1/5/15 min) {load[0]} at the start, {load[1]} at the end; {wrk};",
        f"server pinned to core 0, wrk to core 1{', both at nice ' + nice[2] if nice else ''};",
        f"{args.rounds} interleaved rounds of {args.seconds:g} s per side after a 2 s warm-up.",
        "Reproduce:",
        "",
        f"    bench/run.sh --only {only} --seconds {args.seconds:g} --rounds {args.rounds}",
        "",
    ]


def _signed_range(values: list[float]) -> str:
    return f"{statistics.median(values):+.3f} ({min(values):+.3f} to {max(values):+.3f})"


def render_b4(b4: B4Result, args: argparse.Namespace) -> str:
    lines = [
        "## B4: what a receipt costs a prediction (c=1)",
        "",
        *_provenance(args, b4.load, "B4"),
        "Our server answering with receipts against the same server with the receipt step",
        "removed (`python -m bench.servers ours-trivial-noreceipt PORT`: bench only, its",
        '`FeedbackJoiner.receipt_for` returns "", so the body keeps `"parameters": {"receipt":',
        '""}` and the `coalmine-receipt` header is left out). Both load their keys from a file,',
        "as in a pod, and both predict up to 32 rows inline (`inline_predict_max_seconds` 0.01),",
        "so neither moves to worker threads mid-run on a busy machine (100 rows always use the",
        "threads). One connection, so the difference is latency, not queueing.",
        "",
        "| case | side | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|",
    ]
    for case, sides in b4.cases.items():
        lines += [f"| {case} " + _row(name, runs) for name, runs in sides.items()]
    lines += [
        "",
        "| case | p50 with - without receipt, ms | req/s with / without receipt |",
        "|---|---|---|",
    ]
    for case, sides in b4.cases.items():
        ours, peer = sides["receipt"], sides["no receipt"]
        diffs = [a.p50_ms - b.p50_ms for a, b in zip(ours, peer, strict=True)]
        lines.append(
            f"| {case} | **{_signed_range(diffs)}** | **{_ratio_range(ours, peer, 'rps')}** |"
        )
    lines += [
        "",
        "- target: at most +0.1 ms p50 at c=1",
        "- differences and ratios are medians of per-round pairs (min to max in brackets); from",
        "  1 ms up wrk prints p50 in steps of 10 µs",
        "- at c=1 req/s is 1 / mean latency, so the machine's pauses (see p99) move it more than",
        "  the p50",
        "",
        "The same requests with the app called in-process (no sockets, no client): CPU time per",
        "request over 40 short alternated rounds (medians; the difference is the median of the",
        "per-round differences), and the signing alone in a tight loop:",
        "",
        "| rows | CPU µs with receipt | CPU µs without | difference µs | `receipt_for` alone µs |",
        "|---|---|---|---|---|",
    ]
    for rows, cpu in b4.request_cpu_us.items():
        with_, without = cpu["receipt"], cpu["no receipt"]
        lines.append(
            f"| {rows} | {with_:.1f} | {without:.1f} | **{cpu['difference']:+.1f}** "
            f"| {b4.receipt_us[rows]:.1f} |"
        )
    lines += [
        "",
        "In a request the signing costs more than alone in a loop, most likely because the rest",
        "of the request pushes its code and data out of the CPU caches between two receipts.",
    ]
    return "\n".join(lines)


def render_b5(b5: B5Result, args: argparse.Namespace) -> str:
    lines = [
        "## B5: label ingestion (one server process, one core)",
        "",
        *_provenance(args, b5.load, "B5"),
        f"Labels posted to `/v2/models/iris/feedback` over {b5.connections} connections. Every",
        "receipt is real and used once: signed in the benchmark process with the keys file the",
        "server runs with (`--receipt-keys-file`), so the server verifies each, and a label joins",
        "only once (a repeat gets 409). Fresh connections send `Connection: close`. The server",
        "runs with default settings, so once its duplicate memory is full (500,000 receipts) it",
        "forgets the oldest with every new label, as a busy pod does.",
        "",
        f"| side | labels/POST | POSTs/s | labels/s | p50 ms per POST ({b5.connections} in flight) "
        "| p99 ms | POSTs checked |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, runs in b5.sides.items():
        per_post = b5.labels_per_post[name]
        lines.append(
            f"| {name} | {per_post:,} | {_med(runs, 'rps'):,.1f} "
            f"| **{_med(runs, 'rps') * per_post:,.0f}** | {_med(runs, 'p50_ms'):.3f} "
            f"| {_med(runs, 'p99_ms'):.3f} | {b5.answered[name]:,} |"
        )
    batch, *singles = b5.sides
    lines += ["", "- target: at least 5,000 labels/s per pod in batches of 1,000"]
    for single in singles:
        gain = _labels_ratio(b5, batch, single)
        lines.append(f"- labels/s, {batch} / {single}: **{gain}**")
    lines += [
        '- every recorded POST was checked: each batch answered `"joined": 1000`, each single',
        "  label 200; a run whose receipts ran out (repeats) is signed again and redone",
        "- in-process `join_batch` (verify, dedupe, count), CPU time, median of 20 batches:",
        f"  {b5.join_us:.1f} µs per label, a ceiling of {1e6 / b5.join_us:,.0f} labels/s on one",
        "  core; the rest of a batch's time over HTTP is reading and parsing its JSON and",
        "  writing the answer",
    ]
    return "\n".join(lines)


def _labels_ratio(b5: B5Result, a: str, b: str) -> str:
    per_a, per_b = b5.labels_per_post[a], b5.labels_per_post[b]
    ratios = [
        x.rps * per_a / (y.rps * per_b) for x, y in zip(b5.sides[a], b5.sides[b], strict=True)
    ]
    return f"{statistics.median(ratios):.1f}x ({min(ratios):.1f}-{max(ratios):.1f})"
