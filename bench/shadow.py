"""B7: what the shadow mirror costs the client and the stable pod.

A stable ``coalmine-serve`` and a canary ``coalmine-serve`` (the same ONNX classifier) on
loopback; a client sends one-row requests one at a time to stable, in alternating blocks
with the mirror off and on (every request mirrored), so both arms see the same drift of a
shared machine. Reported as ratios on/off: the client's p99 and median, and the stable
process's CPU per request; then the same against a canary that is down (nothing listens).

    .venv/bin/python -m bench.shadow [--blocks 10] [--size 200]

On two shared cores the canary's own CPU competes with stable's, which a cluster does not
do (the canary's pods run elsewhere): read the healthy row as an upper bound.
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

# The integration test's own harness (servers, mirror file, alternating blocks), so the bench
# measures exactly what the tests exercise; loaded at run time because mypy checks the test
# modules as tests, not under the bench's settings.
harness: Any = importlib.import_module("tests.coalmine_serving.test_shadow_mirror_integration")
models: Any = importlib.import_module("tests.coalmine_serving.models")
p99 = harness.p99


def row(name: str, run: Any) -> str:
    cpu_off, cpu_on = run.cpu_off / len(run.off), run.cpu_on / len(run.on)
    return (
        f"| {name} | {p99(run.off) * 1e3:.2f} → {p99(run.on) * 1e3:.2f} ms"
        f" ({p99(run.on) / p99(run.off):.2f}×) | {np.median(run.off) * 1e3:.2f} →"
        f" {np.median(run.on) * 1e3:.2f} ms ({np.median(run.on) / np.median(run.off):.2f}×)"
        f" | {(cpu_on - cpu_off) * 1e6:.0f} µs ({cpu_on / cpu_off:.2f}×)"
        f" | {run.slower_blocks} of {len(run.block_p99s)} | {sorted(run.statuses)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=10, help="pairs of blocks (off, on)")
    parser.add_argument("--size", type=int, default=200, help="requests per block")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        artifact = models.onnx_artifact(tmp, models.classifier(), "clf.onnx")
        config = tmp / "mirror.json"
        config.write_text("{}")
        procs = {
            "stable": harness._stable(artifact, tmp, config),
            "canary": harness._canary(artifact, tmp),
        }
        with models.all_ready(procs):
            stable = procs["stable"]
            healthy = harness._on_vs_off(
                stable, config, procs["canary"].url, args.blocks, args.size
            )
            down_url = f"http://127.0.0.1:{models.free_port()}"
            down = harness._on_vs_off(stable, config, down_url, args.blocks, args.size)
    print(
        "| canary | client p99 off → on | client median off → on"
        " | stable CPU added per mirrored request | blocks where on's p99 > off's"
        " | client statuses |"
    )
    print("|---|---|---|---|---|---|")
    print(row("healthy (same cores)", healthy))
    print(row("down", down))


if __name__ == "__main__":
    main()
