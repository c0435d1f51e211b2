"""The B2 peer: Seldon MLServer in its own virtualenv, serving the same scikit-learn model."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

VENV = Path(
    os.environ.get(
        "COALMINE_MLSERVER_VENV", Path.home() / ".cache" / "coalmine-bench" / "mlserver-venv"
    )
)


def ensure_venv() -> Path:
    """MLServer pins old FastAPI and many heavy dependencies, so it never enters our .venv."""
    if not (VENV / "bin" / "mlserver").exists():
        subprocess.run(["python3.11", "-m", "venv", str(VENV)], check=True)
        pip = [str(VENV / "bin" / "pip"), "install", "-q"]
        subprocess.run([*pip, "mlserver", "mlserver-sklearn", "httptools"], check=True)
    return VENV


def build_model(work: Path) -> tuple[Path, str]:
    """Iris (shipped inside scikit-learn, no download) -> the same estimator as skops and joblib."""
    import joblib
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from coalmine_serving.artifacts.integrity import sha256_file

    rows, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(rows, labels)
    sio.dump(model, work / "iris.skops")
    model_dir = work / "mlserver" / "iris"
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / "model.joblib")
    return work / "iris.skops", sha256_file(work / "iris.skops")


def start(
    work: Path, port: int, launch: Callable[..., subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    venv = ensure_venv()
    root = work / "mlserver"
    settings = {
        "http_port": port, "grpc_port": port + 50, "metrics_port": port + 51,
        # parallel_workers 0 runs inference in the server process: for a tiny model that is
        # MLServer's fastest setting (no inter-process hop), and "1 worker" like ours.
        "parallel_workers": 0, "debug": False,
    }  # fmt: skip
    (root / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": "iris",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "1"},
    }
    (root / "iris" / "model-settings.json").write_text(json.dumps(model_settings))
    return launch([str(venv / "bin" / "mlserver"), "start", str(root)], work / "mlserver.log")
