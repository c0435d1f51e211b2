"""`python -m e2e.devcluster demo`: v1 serving, a good v2 that promotes, then a v3 that answers
HTTP 200 to every request but predicts wrongly, rolled back by its accuracy gate on the true
labels a label pipeline posts later (to any pod, through the Service, by signed receipt).

Runs on real pods (a single-node cluster built on this machine, the operator installed by
helm) when this machine can, else on the integration tier's kubelet stand-in; it says which,
and why, at the start (e2e.devcluster.demo.worlds). Watches the ModelDeployment like
`kubectl get -w`, prints a summary, and stops every process it started, on success, error and
Ctrl-C alike.
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from e2e.devcluster.demo.view import Stage, progress_key, progress_line, summary
from e2e.devcluster.demo.worlds import StandInWorld, World, choose
from e2e.devcluster.specs import DEFAULT_CHECKS, spec

STEPS = [{"weight": 20, "pause": "4s"}, {"weight": 50, "pause": "4s"}]
EVENT_GRACE_SECONDS = 15.0
"""How long a stage waits, once its status is final, for the Event that announces it."""
# v3's gate: the lower bound of its accuracy, over at least 20 labels, must reach 0.8. The
# request-level checks stay on and must pass: v3 is fast and never fails a request.
ACCURACY = {"name": "accuracy", "quality": {"metric": "accuracy", "min": 0.8, "minLabels": 20}}
V3_CHECKS = [*DEFAULT_CHECKS, ACCURACY]


class StoryError(Exception):
    """The rollout did not do what the story says (the demo exits non-zero)."""


def say(text: str = "") -> None:
    print(text, flush=True)


def run(workdir: Path | None = None, cluster: str = "auto") -> int:
    """The whole demo; returns the process exit code. ``cluster``: auto, node or standin."""
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up like Ctrl-C does
    root = workdir or Path(tempfile.mkdtemp(prefix="coalmine-demo-"))
    started = time.monotonic()
    world: World | None = None
    code = 1
    try:
        world = _start(choose(cluster, root, say), fallback=cluster == "auto", root=root)
        say(f"ready in {time.monotonic() - started:.1f}s\n")
        _story(world)
        code = 0
    except StoryError as failure:
        say(f"\nDEMO FAILED: {failure}")
    except KeyboardInterrupt:
        say("\ninterrupted")
        code = 130
    finally:
        if code == 1 and world is not None:
            say(f"\n{world.diagnostics()}")
        if world is not None:
            say("\nstopping everything the demo started ...")
            world.stop()
        _clean(root, keep=code == 1 and workdir is None)  # a failure's logs are worth a look
    say(f"total {time.monotonic() - started:.1f}s")
    return code


def _start(world: World, *, fallback: bool, root: Path) -> World:
    """Start `world`; when the real node was only preferred (auto), a node that will not come
    up falls back to the stand-in, saying so loudly, rather than ending the demo."""
    say(world.intro)
    try:
        world.start(say)
        return world
    except Exception as exc:
        world.stop()
        if not fallback or isinstance(world, StandInWorld):
            raise StoryError(f"could not start the cluster: {type(exc).__name__}: {exc}") from exc
        say(f"\nTHE REAL-NODE CLUSTER DID NOT START: {type(exc).__name__}: {exc}")
        say("falling back to the kubelet stand-in.\n")
        return _start(StandInWorld(root / "standin"), fallback=False, root=root)


def _story(world: World) -> None:
    url = world.prometheus_for_operator()
    stages = [Stage("v1: first rollout"), Stage("v2: good canary"), Stage("v3: wrong, HTTP 200")]

    say("== v1: first version ==")
    world.apply(spec(world.model("v1"), steps=STEPS, prometheus=url))
    _watch(world, stages[0], lambda s: _healthy_on(s, "v1"))
    stages[0].outcome = "Healthy, stable v1"
    world.start_traffic()
    say("client traffic started (up to 25 requests/s); each prediction's receipt and true")
    say("label go to a label pipeline that posts them a few seconds later, in batches\n")

    say("== v2: a good new version, under traffic ==")
    world.apply(spec(world.model("v2"), steps=STEPS, prometheus=url))
    _watch(world, stages[1], lambda s: _healthy_on(s, "v2"), announced="Promoted")
    stages[1].outcome = "promoted, stable v2"

    say("\n== v3: a wrong model (HTTP 200 to every request, the opposite class), with an")
    say("   accuracy gate on the true labels next to the error-rate and latency checks ==")
    world.apply(spec(world.model("v3", "inverted"), steps=STEPS, checks=V3_CHECKS, prometheus=url))
    last = _watch(world, stages[2], _rolled_back, announced="RolledBack")
    stages[2].outcome = "rolled back on accuracy, stable v2"
    record = (_status(world).get("analysis") or {}).get("checks") or stages[2].checks
    _confirm_the_gate_did_it(last, record, stages[2])
    say("\nstopping the clients; the label pipeline posts the labels still waiting ...")
    world.stop_traffic()
    say(summary(stages, record, last.get("rollback") or {}, world.label_counts()))
    say("\nRESULT: v2 promoted, then v3 (HTTP 200 to its clients, wrong answers) rolled back")
    say("automatically by its accuracy gate, as expected.")


def _confirm_the_gate_did_it(
    status: dict[str, Any], record: list[dict[str, Any]], stage: Stage
) -> None:
    """The story's claims about v3: the accuracy gate rolled it back while error rate and
    latency passed, no client got an HTTP error, and stable is v2 again."""
    if (status.get("stable") or {}).get("version") != "v2":
        raise StoryError(f"after the rollback stable is not v2: {status.get('stable')}")
    rollback = status.get("rollback") or {}
    if rollback.get("check") != "accuracy":
        raise StoryError(f"v3 was rolled back, but not by its accuracy gate: {rollback}")
    verdicts = {check["name"]: check.get("verdict") for check in record}
    others = {name: verdicts.get(name) for name in ("error-rate", "latency-p99")}
    if set(others.values()) != {"pass"}:
        raise StoryError(f"v3's error-rate and latency checks did not both pass: {others}")
    if stage.clients.failed.total():
        raise StoryError(f"clients got HTTP errors while v3 ran: {dict(stage.clients.failed)}")


def _status(world: World) -> dict[str, Any]:
    return dict(world.md().get("status") or {})


def _healthy_on(status: dict[str, Any], version: str) -> bool:
    stable = (status.get("stable") or {}).get("version")
    if status.get("phase") == "Degraded":
        raise StoryError(f"{version} was rolled back: {status.get('message')}")
    return status.get("phase") == "Healthy" and stable == version


def _rolled_back(status: dict[str, Any]) -> bool:
    if status.get("phase") == "Healthy" and (status.get("stable") or {}).get("version") == "v3":
        raise StoryError("v3 was promoted although its predictions are wrong")
    rollback = status.get("rollback") or {}
    return status.get("phase") == "Degraded" and rollback.get("stage") == "Done"


def _watch(
    world: World,
    stage: Stage,
    done: Callable[[dict[str, Any]], bool],
    announced: str | None = None,
) -> dict[str, Any]:
    """Print a line per change and every new Event until `done` (and, when ``announced`` is
    given, until the Event with that reason is printed too: the operator posts a tick's
    Events just after its status write); count the clients' requests."""
    began = time.monotonic()
    counts_before, labels_before = world.client_counts(), world.label_counts()
    phase, phase_began = "", began
    seen_key: tuple[Any, ...] | None = None
    seen_events = {e["metadata"]["uid"] for e in world.events()}
    printed: list[str] = []  # reasons of the Events printed in this stage
    while True:
        elapsed = time.monotonic() - began
        failure = world.operator_failure()
        if failure:
            raise StoryError(failure)
        if elapsed > world.stage_timeout:
            raise StoryError(f"'{stage.title}' did not finish in {world.stage_timeout:.0f}s")
        md = world.md()
        status = dict(md.get("status") or {})
        steps = len(((md.get("spec") or {}).get("canary") or {}).get("steps") or [])
        if status.get("phase", "Pending") != phase:
            _account(stage, phase, time.monotonic() - phase_began)
            phase, phase_began = status.get("phase", "Pending"), time.monotonic()
        if progress_key(status) != seen_key:
            seen_key = progress_key(status)
            say(progress_line(elapsed, status, steps))
        if (status.get("analysis") or {}).get("checks"):
            stage.checks = list(status["analysis"]["checks"])
        printed += _say_new_events(world, seen_events)
        if done(status):
            break
        time.sleep(0.25)
    announce_by = time.monotonic() + EVENT_GRACE_SECONDS
    while announced and announced not in printed and time.monotonic() < announce_by:
        time.sleep(0.25)
        printed += _say_new_events(world, seen_events)
    stage.seconds = time.monotonic() - began
    _account(stage, phase, time.monotonic() - phase_began)
    stage.clients = world.client_counts() - counts_before
    stage.labels = world.label_counts() - labels_before
    return status


def _say_new_events(world: World, seen: set[str]) -> list[str]:
    """Print the Events not printed yet; their reasons."""
    reasons = []
    for event in world.events():
        if event["metadata"]["uid"] not in seen:
            seen.add(event["metadata"]["uid"])
            reasons.append(event["reason"])
            say(f"          event {event['reason']}: {event['message']}")
    return reasons


def _account(stage: Stage, phase: str, seconds: float) -> None:
    if phase:
        stage.phases[phase] = stage.phases.get(phase, 0.0) + seconds


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _clean(root: Path, keep: bool) -> None:
    if keep:
        say(f"logs kept for inspection in {root}")
        return
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run())
