"""Tiny models made in the test itself (never downloaded): fit in milliseconds on synthetic data."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from coalmine_serving.artifacts.integrity import sha256_file
from e2e.devcluster.process import free_port

N_FEATURES = 4


@dataclass(frozen=True)
class Artifact:
    path: Path
    sha256: str
    fmt: str


def training_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, class labels (x0 > 0.5) and a regression target (2*x0 + x1)."""
    rows = np.random.default_rng(seed).random((80, N_FEATURES))
    return rows, (rows[:, 0] > 0.5).astype(np.int64), 2 * rows[:, 0] + rows[:, 1]


def classifier():  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression

    rows, labels, _ = training_data()
    return LogisticRegression(C=100.0).fit(rows, labels)


def regressor():  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LinearRegression

    rows, _, target = training_data()
    return LinearRegression().fit(rows, target)


def _artifact(path: Path, fmt: str) -> Artifact:
    return Artifact(path, sha256_file(path), fmt)


def skops_artifact(tmp: Path, estimator: object, name: str = "model.skops") -> Artifact:
    import skops.io as sio

    sio.dump(estimator, tmp / name)
    return _artifact(tmp / name, "skops")


def joblib_artifact(tmp: Path, obj: object, name: str = "model.joblib") -> Artifact:
    import joblib

    joblib.dump(obj, tmp / name)
    return _artifact(tmp / name, "joblib")


def onnx_artifact(tmp: Path, estimator: object, name: str = "model.onnx") -> Artifact:
    from skl2onnx import to_onnx

    sample = training_data()[0][:1].astype(np.float32)
    # zipmap=False keeps the probability output a plain tensor; we only run the label anyway.
    options = {id(estimator): {"zipmap": False}} if hasattr(estimator, "classes_") else None
    model = to_onnx(estimator, sample, options=options, target_opset=17)
    (tmp / name).write_bytes(model.SerializeToString())
    return _artifact(tmp / name, "onnx")


class ServerProcess:
    """``coalmine-serve`` as a real process on a real loopback socket."""

    def __init__(self, artifact: Artifact, log: Path, *extra: str, name: str = "iris") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = name
        args = [sys.executable, "-m", "coalmine_serving.cli", "serve", "--host", "127.0.0.1"]
        args += ["--port", str(self.port), "--model-name", name, "--model-uri", str(artifact.path)]
        args += ["--model-format", artifact.fmt, "--sha256", artifact.sha256, *extra]
        self._log = log.open("wb")
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError("server did not become ready")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@contextmanager
def all_ready(procs: dict[str, ServerProcess]) -> Iterator[dict[str, ServerProcess]]:
    """The started servers once every one answers ready; every one stopped afterwards."""
    try:
        for proc in procs.values():
            proc.wait_ready()
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()
