"""Where a tick's CPU goes: the operator run with each stage of a reconcile timed in CPU.

    python -m bench.tickstages OUT.json [operator options...]

Runs ``coalmine operator`` with the stages of a tick (``reconcile``, its observe, decide,
measure, act and status write, the API and Prometheus requests under them) wrapped in
timers of the calling thread's CPU (``time.thread_time``), and the cyclic collector's passes
timed the same way. Every 5 s the totals (seconds of CPU, calls) go to OUT.json, with the
event loop's thread and the whole process beside them. ``bench.scale --stages`` runs its
operator this way and reports each stage's milliseconds per tick for the canary window
(docs/benchmarks.md, B9). Thread CPU is what the stage itself burned: waiting for a socket
or for the GIL costs nothing, so the stages add up to the reconcile threads' CPU.

A measuring aid only: the wrappers cost a few microseconds a call and change nothing else.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.scalemeasure import cpu_seconds

CPU: defaultdict[str, float] = defaultdict(float)  # seconds
CALLS: Counter[str] = Counter()
_collecting = threading.local()

# (module, attribute, stage name): functions a tick calls through these module attributes.
STAGES = [
    ("coalmine.handlers", "reconcile", "reconcile"),
    *(("coalmine.reconcile", name, name) for name in (
        "ensure_receipt_keys", "check_children", "observe", "decide", "with_measurements",
        "act", "write",
    )),
    ("coalmine.observe", "measure_within", "measure_within"),
    ("coalmine.observe", "prefetched", "measure: queries asked and split"),
]  # fmt: skip
METHODS = [
    ("coalmine.k8s.client", "KubernetesApi", "_once", "API request"),
    ("coalmine.k8s.cached", "CachedKubeApi", "get", "cached get"),
    ("coalmine.k8s.cached", "CachedKubeApi", "apply", "cached apply"),
    ("coalmine.analysis.prometheus", "PrometheusProvider", "_get", "Prometheus request"),
    ("coalmine.opmetrics", "OperatorMetrics", "written", "operator metrics"),
]


def timed(stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            CPU[stage] += time.thread_time() - started
            CALLS[stage] += 1

    return wrapper


def install() -> None:
    import importlib

    for module_name, attribute, stage in STAGES:
        module = importlib.import_module(module_name)
        setattr(module, attribute, timed(stage, getattr(module, attribute)))
    for module_name, class_name, method, stage in METHODS:
        owner = getattr(importlib.import_module(module_name), class_name)
        setattr(owner, method, timed(stage, getattr(owner, method)))
    from coalmine.api import ModelDeployment

    parse = ModelDeployment.from_manifest.__func__  # type: ignore[attr-defined]
    ModelDeployment.from_manifest = classmethod(timed("parse the object", parse))  # type: ignore[method-assign, assignment]
    gc.callbacks.append(_collector_timed)


def _collector_timed(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _collecting.started = time.thread_time()
        return
    stage = f"garbage collection, generation {info['generation']}"
    CPU[stage] += time.thread_time() - getattr(_collecting, "started", time.thread_time())
    CALLS[stage] += 1


def snapshot() -> dict[str, Any]:
    """Totals so far, with the event loop's thread and the whole process."""
    loop = Path(f"/proc/self/task/{threading.main_thread().native_id}/stat")
    times = os.times()
    return {
        "at": time.monotonic(),
        "stages": {stage: [CPU[stage], CALLS[stage]] for stage in CPU},
        "event loop thread": cpu_seconds(loop),
        "process": times.user + times.system,
    }


def per_tick(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Milliseconds of CPU per tick between two snapshots, for each stage (largest first)."""
    ticks = _calls(after, "reconcile") - _calls(before, "reconcile")
    per = max(ticks, 1)

    def spent(stage: str) -> float:
        old = float(before["stages"].get(stage, [0.0, 0])[0])
        return 1000 * (float(after["stages"][stage][0]) - old) / per

    stages = {stage: round(spent(stage), 3) for stage in after["stages"]}
    figures = {
        "ticks": ticks,
        "process": round(1000 * (after["process"] - before["process"]) / per, 3),
        "event loop thread": round(
            1000 * (after["event loop thread"] - before["event loop thread"]) / per, 3
        ),
    }
    return {**figures, **dict(sorted(stages.items(), key=lambda kv: -kv[1]))}


def _calls(snapshot: dict[str, Any], stage: str) -> int:
    return int(snapshot["stages"].get(stage, [0.0, 0])[1])


def _keep_writing(path: Path) -> None:
    while True:
        time.sleep(5)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(snapshot()))
        partial.replace(path)


def main() -> None:
    out = Path(sys.argv[1])
    install()
    threading.Thread(target=_keep_writing, args=(out,), daemon=True, name="stages").start()
    from coalmine.cli.operator import operator

    operator(sys.argv[2:], standalone_mode=True)


if __name__ == "__main__":
    main()
