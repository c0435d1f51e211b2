"""`coalmine demo`: v1 serving, a good v2 that promotes, a bad v3 that rolls back by itself.

Runs on the local control plane with the kubelet stand-in of the integration tier (printed
plainly at the start), watches the ModelDeployment like `kubectl get -w`, prints a summary,
and stops every process it started, on success, error and Ctrl-C alike.
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from coalmine.demo_view import WHAT_IS_REAL, Stage, progress_key, progress_line, summary
from coalmine.devcluster.binaries import kube_bin_dir
from coalmine.devcluster.controlplane import ControlPlane
from coalmine.devcluster.prometheus import PrometheusServer
from coalmine.devcluster.sandbox import Sandbox, install_cluster_objects
from coalmine.devcluster.specs import spec
from coalmine.devcluster.tinymodels import make_models
from coalmine.devcluster.traffic import TrafficGenerator

STEPS = [{"weight": 20, "pause": "4s"}, {"weight": 50, "pause": "4s"}]
FAULTS = {"COALMINE_SERVING_FAULT_ERROR_RATE": "0.2"}  # v3 answers 20% of requests with a 500
STAGE_TIMEOUT = 150.0


class StoryError(Exception):
    """The rollout did not do what the story says (the demo exits non-zero)."""


def say(text: str = "") -> None:
    print(text, flush=True)


def run(workdir: Path | None = None) -> int:
    """The whole demo; returns the process exit code."""
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up like Ctrl-C does
    say(WHAT_IS_REAL)
    root = workdir or Path(tempfile.mkdtemp(prefix="coalmine-demo-"))
    started = time.monotonic()
    plane: ControlPlane | None = None
    prometheus: PrometheusServer | None = None
    sandbox: Sandbox | None = None
    code = 1
    try:
        say("starting etcd, kube-apiserver, kube-controller-manager and Prometheus ...")
        plane = ControlPlane(root / "control-plane", kube_bin_dir())
        plane.start()
        prometheus = PrometheusServer(root / "prometheus")
        prometheus.start()
        with plane.api_client() as api:
            install_cluster_objects(api)
        sandbox = Sandbox(plane, prometheus, root / "sandbox", "coalmine-demo")
        sandbox.setup()
        say(f"control plane up in {time.monotonic() - started:.1f}s; operator running\n")
        _story(sandbox, root / "models")
        code = 0
    except StoryError as failure:
        say(f"\nDEMO FAILED: {failure}")
    except KeyboardInterrupt:
        say("\ninterrupted")
        code = 130
    finally:
        if code == 1 and sandbox is not None and sandbox.operator is not None:
            say(f"\noperator log (tail):\n{sandbox.operator.log_tail(3000)}")
        _stop(sandbox, prometheus, plane)
        _clean(root, keep=code == 1 and workdir is None)  # a failure's logs are worth a look
    say(f"total {time.monotonic() - started:.1f}s")
    return code


def _story(sandbox: Sandbox, models_dir: Path) -> None:
    models = make_models(models_dir)
    say(f"built tiny scikit-learn models (skops, sha256 {models.good.sha256[:12]}...)\n")
    url = sandbox.prometheus.url
    stages = [Stage("v1: first rollout"), Stage("v2: good canary"), Stage("v3: 20% errors")]

    say("== v1: first version ==")
    sandbox.apply(spec(models.model("v1"), steps=STEPS, prometheus=url))
    _watch(sandbox, stages[0], lambda s: _healthy_on(s, "v1"))
    stages[0].outcome = "Healthy, stable v1"
    traffic = sandbox.start_traffic()
    say("client traffic started (25 requests/s, with ground-truth feedback)\n")

    say("== v2: a good new version, under traffic ==")
    sandbox.apply(spec(models.model("v2"), steps=STEPS, prometheus=url))
    _watch(sandbox, stages[1], lambda s: _healthy_on(s, "v2"), traffic)
    stages[1].outcome = "promoted, stable v2"

    say("\n== v3: a bad version (the server fails 20% of requests) ==")
    sandbox.apply(spec(models.model("v3"), steps=STEPS, env=FAULTS, prometheus=url))
    last = _watch(sandbox, stages[2], _rolled_back, traffic)
    stages[2].outcome = "rolled back automatically, stable v2"
    if (last.get("stable") or {}).get("version") != "v2":
        raise StoryError(f"after the rollback stable is not v2: {last.get('stable')}")
    record = (sandbox.status().get("analysis") or {}).get("checks") or stages[2].checks
    say(summary(stages, record, last.get("rollback") or {}))
    say("\nRESULT: v2 promoted, then v3 rolled back automatically, as expected.")


def _healthy_on(status: dict[str, Any], version: str) -> bool:
    stable = (status.get("stable") or {}).get("version")
    if status.get("phase") == "Degraded":
        raise StoryError(f"{version} was rolled back: {status.get('message')}")
    return status.get("phase") == "Healthy" and stable == version


def _rolled_back(status: dict[str, Any]) -> bool:
    if status.get("phase") == "Healthy" and (status.get("stable") or {}).get("version") == "v3":
        raise StoryError("v3 was promoted although it fails 20% of its requests")
    rollback = status.get("rollback") or {}
    return status.get("phase") == "Degraded" and rollback.get("stage") == "Done"


def _watch(
    sandbox: Sandbox,
    stage: Stage,
    done: Callable[[dict[str, Any]], bool],
    traffic: TrafficGenerator | None = None,
) -> dict[str, Any]:
    """Print a line per change and every new Event until `done`; count the clients' requests."""
    began = time.monotonic()
    sent0 = traffic.sent.copy() if traffic else Counter[str]()
    failed0 = traffic.failed.copy() if traffic else Counter[str]()
    dropped0 = traffic.dropped.copy() if traffic else Counter[str]()
    phase, phase_began = "", began
    seen_key: tuple[Any, ...] | None = None
    seen_events = {e["metadata"]["uid"] for e in sandbox.events()}
    while True:
        elapsed = time.monotonic() - began
        if sandbox.operator is not None and not sandbox.operator.running:
            raise StoryError("the operator exited")
        if elapsed > STAGE_TIMEOUT:
            raise StoryError(f"'{stage.title}' did not finish in {STAGE_TIMEOUT:.0f}s")
        status = sandbox.status()
        steps = len(((sandbox.md().get("spec") or {}).get("canary") or {}).get("steps") or [])
        if status.get("phase", "Pending") != phase:
            _account(stage, phase, time.monotonic() - phase_began)
            phase, phase_began = status.get("phase", "Pending"), time.monotonic()
        if progress_key(status) != seen_key:
            seen_key = progress_key(status)
            say(progress_line(elapsed, status, steps))
        if (status.get("analysis") or {}).get("checks"):
            stage.checks = list(status["analysis"]["checks"])
        for event in sandbox.events():
            if event["metadata"]["uid"] not in seen_events:
                seen_events.add(event["metadata"]["uid"])
                say(f"          event {event['reason']}: {event['message']}")
        if done(status):
            break
        time.sleep(0.25)
    stage.seconds = time.monotonic() - began
    _account(stage, phase, time.monotonic() - phase_began)
    if traffic is not None:
        stage.sent = traffic.sent - sent0
        stage.failed = traffic.failed - failed0
        stage.dropped = traffic.dropped - dropped0
    return status


def _account(stage: Stage, phase: str, seconds: float) -> None:
    if phase:
        stage.phases[phase] = stage.phases.get(phase, 0.0) + seconds


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _stop(
    sandbox: Sandbox | None, prometheus: PrometheusServer | None, plane: ControlPlane | None
) -> None:
    """Each part is stopped even if stopping an earlier one fails (a half-done setup)."""
    say("\nstopping everything the demo started ...")
    steps: list[Callable[[], None]] = []
    if sandbox is not None:
        steps.append(sandbox.teardown)  # traffic, operator, model servers, the namespace
    if prometheus is not None:
        steps.append(prometheus.close)
    if plane is not None:
        steps.append(plane.stop)
    for step in steps:
        try:
            step()
        except Exception as exc:  # report, and keep stopping the rest
            say(f"  while stopping: {type(exc).__name__}: {exc}")


def _clean(root: Path, keep: bool) -> None:
    if keep:
        say(f"logs kept for inspection in {root}")
        return
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run())
