"""Shadow traffic on real servers over real sockets: a stable ``coalmine-serve`` mirrors to a
real canary ``coalmine-serve``, and the client only ever talks to stable.

What must hold: every client answer is stable's; a canary that is down or slow adds no client
error and never makes a client wait for it; a full queue drops and counts; the comparison
counters say how often the two models agreed. What the mirror costs in client latency and
stable CPU is a benchmark (``python -m bench.shadow``, B7 in docs/benchmarks.md), not an
assertion here: timings on a shared machine belong side by side in one run, as ratios.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest

from coalmine_serving import contract as c
from tests.coalmine_serving import models
from tests.coalmine_serving.http.test_app import _infer_body

pytestmark = pytest.mark.integration

RELOAD_WAIT = 1.5  # the server re-reads its mirror file every second
ROWS = np.random.default_rng(7).random((64, 4)).round(3).tolist()


def _flipped_classifier(tmp: Path) -> models.Artifact:
    """A classifier that answers the opposite class of ``models.classifier`` nearly always."""
    from sklearn.linear_model import LogisticRegression

    rows, labels, _ = models.training_data()
    return models.onnx_artifact(tmp, LogisticRegression(C=100.0).fit(rows, 1 - labels), "flip.onnx")


def _point(config: Path, url: str | None, share: float = 1.0, revision: str = "rc") -> None:
    """Write the mirror file as the operator does (atomically), then wait for the re-read."""
    body = {} if url is None else {"url": url, "share": share, "canaryRevision": revision}
    tmp = config.with_suffix(".tmp")
    tmp.write_text(json.dumps(body))
    tmp.replace(config)
    time.sleep(RELOAD_WAIT)


def _stable(
    artifact: models.Artifact, tmp: Path, config: Path, *extra: str
) -> models.ServerProcess:
    return models.ServerProcess(
        artifact, tmp / "stable.log", "--variant", "stable", "--model-version", "1",
        "--revision", "rs", "--mirror-config-file", str(config), *extra,
    )  # fmt: skip


def _canary(artifact: models.Artifact, tmp: Path, *extra: str) -> models.ServerProcess:
    return models.ServerProcess(
        artifact, tmp / "canary.log", "--variant", "canary", "--model-version", "2",
        "--revision", "rc", *extra,
    )  # fmt: skip


def _send(stable: models.ServerProcess, n: int) -> tuple[list[float], list[int], set[str]]:
    """``n`` one-row requests, one at a time on a kept-alive connection, as a client would:
    each one's latency, status, and the model versions that answered."""
    latencies, statuses, versions = [], [], set()
    url = f"{stable.url}/v2/models/iris/infer"
    with httpx.Client(timeout=10) as client:
        for i in range(n):
            body = _infer_body([ROWS[i % len(ROWS)]])
            started = time.perf_counter()
            reply = client.post(url, json=body)
            latencies.append(time.perf_counter() - started)
            statuses.append(reply.status_code)
            if reply.status_code == 200:
                versions.add(reply.json()["model_version"])
    return latencies, statuses, versions


def _series(server: models.ServerProcess, spec: c.MetricSpec, **labels: str) -> float:
    """Sum of the server's samples of ``spec`` whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{server.url}{c.METRICS_PATH}").text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == spec.name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def _settled(server: models.ServerProcess, expected: float, **labels: str) -> float:
    """The mirrored count once it reaches ``expected`` (the workers finish after the client;
    against a dead canary each worker rests 0.5 s after a failure, so a full queue of 256
    takes 16 s to fail)."""
    deadline = time.monotonic() + 40
    while True:
        seen = sum(
            _series(server, c.SHADOW_MIRRORED_TOTAL, result=result.value, **labels)
            for result in c.MirrorResult
        )
        if seen >= expected or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


def _cpu_seconds(server: models.ServerProcess) -> float:
    """User + system CPU time of the server process so far (from /proc)."""
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p99(values: list[float]) -> float:
    return float(np.quantile(values, 0.99))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "mirror.json"
    path.write_text("{}")
    return path


@pytest.fixture
def same_model(
    artifacts, tmp_path: Path, config: Path
) -> Iterator[dict[str, models.ServerProcess]]:  # type: ignore[no-untyped-def]
    procs = {
        "stable": _stable(artifacts["onnx_clf"], tmp_path, config),
        "canary": _canary(artifacts["onnx_clf"], tmp_path),
    }
    with models.all_ready(procs):
        yield procs


def test_agreeing_canary_gets_every_request_and_agrees_on_every_row(same_model, config) -> None:  # type: ignore[no-untyped-def]
    stable, canary = same_model["stable"], same_model["canary"]
    _point(config, canary.url)
    _, statuses, versions = _send(stable, 200)
    assert set(statuses) == {200} and versions == {"1"}  # every client answer is stable's
    assert _settled(stable, 200, canary_revision="rc") == 200
    assert _series(stable, c.SHADOW_MIRRORED_TOTAL, result="compared") == 200
    assert _series(stable, c.SHADOW_COMPARED_TOTAL, result="agree", canary_revision="rc") == 200
    assert _series(stable, c.SHADOW_COMPARED_TOTAL, result="disagree") == 0
    # The canary served them (its own counters: the checks' "canary under mirrored load").
    assert _series(canary, c.REQUESTS_TOTAL, outcome="success") == 200


def test_share_samples_the_requests(same_model, config) -> None:  # type: ignore[no-untyped-def]
    stable, canary = same_model["stable"], same_model["canary"]
    _point(config, canary.url, share=0.25)
    _send(stable, 400)
    mirrored = _settled(stable, 1)
    assert 60 <= mirrored <= 140  # 100 expected; binomial(400, 0.25) is within this > 99.99%


def test_disagreeing_canary_is_counted_never_answering_a_client(
    artifacts, tmp_path, config
) -> None:  # type: ignore[no-untyped-def]
    procs = {
        "stable": _stable(artifacts["onnx_clf"], tmp_path, config),
        "canary": _canary(_flipped_classifier(tmp_path), tmp_path),
    }
    with models.all_ready(procs):
        stable = procs["stable"]
        _point(config, procs["canary"].url)
        _, statuses, versions = _send(stable, 200)
        assert set(statuses) == {200} and versions == {"1"}
        _settled(stable, 200)
        disagreed = _series(stable, c.SHADOW_COMPARED_TOTAL, result="disagree")
        agreed = _series(stable, c.SHADOW_COMPARED_TOTAL, result="agree")
    assert agreed + disagreed == 200
    assert disagreed >= 180


def test_canary_down_adds_no_client_error_or_latency(artifacts, tmp_path, config) -> None:  # type: ignore[no-untyped-def]
    stable = _stable(artifacts["onnx_clf"], tmp_path, config)
    with models.all_ready({"stable": stable}):
        down = f"http://127.0.0.1:{models.free_port()}"  # nothing listens there
        run = _on_vs_off(stable, config, down)
        failed = _settled(stable, run.mirrored)
    print(f"\ncanary down: {run}")
    assert run.statuses == {200} and run.versions == {"1"}
    assert failed == run.mirrored
    assert max(run.on) < 1.0  # refused connections cost the client nothing it could wait on


def test_slow_canary_fills_the_queue_which_drops_and_counts(artifacts, tmp_path, config) -> None:  # type: ignore[no-untyped-def]
    procs = {
        "stable": _stable(
            artifacts["onnx_clf"], tmp_path, config,
            "--mirror-queue-size", "4", "--mirror-concurrency", "1",
            "--mirror-timeout-seconds", "5",
        ),
        "canary": _canary(artifacts["onnx_clf"], tmp_path, "--fault-latency-seconds", "1"),
    }  # fmt: skip
    with models.all_ready(procs):
        stable = procs["stable"]
        run = _on_vs_off(stable, config, procs["canary"].url)
        dropped = _series(stable, c.SHADOW_MIRRORED_TOTAL, result="dropped")
    print(f"\ncanary slow (1 s): {run}")
    assert run.statuses == {200} and run.versions == {"1"}
    # One in flight and four queued at most, each taking the canary 1 s: of the 2,000
    # offered, nearly all are dropped.
    assert dropped >= 0.95 * run.mirrored
    assert max(run.on) < 1.0  # no client request waited for the canary's second


@dataclass
class OnOff:
    """Client latencies and the stable process's CPU, mirror off and on, in alternating
    blocks (this machine's load drifts: blocks side by side see the same drift)."""

    off: list[float] = field(default_factory=list)
    on: list[float] = field(default_factory=list)
    cpu_off: float = 0.0
    cpu_on: float = 0.0
    statuses: set[int] = field(default_factory=set)
    versions: set[str] = field(default_factory=set)
    block_p99s: list[tuple[float, float]] = field(default_factory=list)
    """(off, on) p99 of each pair of neighbouring blocks."""

    @property
    def mirrored(self) -> int:
        return len(self.on)

    @property
    def slower_blocks(self) -> int:
        return sum(on > off for off, on in self.block_p99s)

    def __str__(self) -> str:
        n_off, n_on = len(self.off), len(self.on)
        extra = (self.cpu_on / n_on - self.cpu_off / n_off) * 1e6
        return (
            f"{n_off} requests off, {n_on} on: client p99 off {p99(self.off) * 1e3:.2f} ms,"
            f" on {p99(self.on) * 1e3:.2f} ms; median off {np.median(self.off) * 1e3:.2f} ms,"
            f" on {np.median(self.on) * 1e3:.2f} ms; stable CPU {self.cpu_off / n_off * 1e6:.0f}"
            f" µs/request off, {self.cpu_on / n_on * 1e6:.0f} on: {extra:.0f} µs per mirrored"
            f" request; p99 on above off in {self.slower_blocks} of {len(self.block_p99s)}"
            " block pairs"
        )


def _on_vs_off(
    stable: models.ServerProcess, config: Path, url: str, blocks: int = 10, size: int = 200
) -> OnOff:
    """``blocks`` pairs of ``size`` requests, mirror off then on (2,000 each by default)."""
    run = OnOff()
    _send(stable, 200)  # warm up
    for _ in range(blocks):
        pair = []
        for mirror in (None, url):
            _point(config, mirror)
            cpu = _cpu_seconds(stable)
            latencies, statuses, versions = _send(stable, size)
            used = _cpu_seconds(stable) - cpu
            if mirror is None:
                run.off += latencies
                run.cpu_off += used
            else:
                time.sleep(0.3)  # the workers' share of CPU comes after the last answer
                run.on += latencies
                run.cpu_on += _cpu_seconds(stable) - cpu
            run.statuses |= set(statuses)
            run.versions |= versions
            pair.append(p99(latencies))
        run.block_p99s.append((pair[0], pair[1]))
    return run
