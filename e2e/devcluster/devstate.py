"""A developer's long-running dev cluster: start it detached, find it again, stop it.

`python -m e2e.devcluster dev up` starts the components and exits; their pids and the
kubeconfig path go into `<state dir>/state.json`, which `dev env` and `dev down` read back.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from e2e.devcluster.binaries import kube_bin_dir
from e2e.devcluster.controlplane import ControlPlane
from e2e.devcluster.prometheus import PrometheusServer

DEFAULT_STATE_DIR = Path(os.environ.get("COALMINE_CACHE", Path.home() / ".cache/coalmine")) / "dev"


@dataclass
class DevState:
    kubeconfig: str
    server: str
    prometheus_url: str
    logs: str
    startup_seconds: float
    # name -> [pid, executable]; the executable guards against killing a recycled pid.
    processes: dict[str, list[int | str]] = field(default_factory=dict)

    def alive(self) -> dict[str, int]:
        found = {name: (int(pid), str(exe)) for name, (pid, exe) in self.processes.items()}
        return {name: pid for name, (pid, exe) in found.items() if _is_ours(pid, exe)}


def load(state_dir: Path) -> DevState | None:
    path = state_dir / "state.json"
    if not path.is_file():
        return None
    return DevState(**json.loads(path.read_text()))


def up(state_dir: Path) -> DevState:
    """Start a fresh control plane and Prometheus under `state_dir`, detached from this process."""
    existing = load(state_dir)
    if existing and existing.alive():
        raise RuntimeError(f"a dev cluster is already running (state in {state_dir})")
    shutil.rmtree(state_dir / "run", ignore_errors=True)  # fresh PKI and etcd every time
    run_dir = state_dir / "run"
    control_plane = ControlPlane(run_dir / "control-plane", kube_bin_dir())
    control_plane.start()
    prometheus = PrometheusServer(run_dir / "prometheus")
    try:
        prometheus.start()
    except BaseException:
        control_plane.stop()
        raise
    processes = [*control_plane.processes, prometheus.process]
    state = DevState(
        kubeconfig=str(control_plane.kubeconfig),
        server=control_plane.server,
        prometheus_url=prometheus.url,
        logs=str(run_dir),
        startup_seconds=round(control_plane.startup_seconds or 0.0, 1),
        processes={p.name: [p.detach(), p.argv[0]] for p in processes},
    )
    (state_dir / "state.json").write_text(json.dumps(asdict(state), indent=2))
    return state


def down(state_dir: Path, grace: float = 10.0) -> list[str]:
    """Stop whatever `up` started (newest first) and forget the state; returns stopped names."""
    state = load(state_dir)
    if state is None:
        return []
    alive = state.alive()
    for name in reversed(list(alive)):
        _stop_group(alive[name], grace)
    (state_dir / "state.json").unlink()
    return list(alive)


def _is_ours(pid: int, executable: str) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return False
    return argv0 == executable


def _stop_group(pgid: int, grace: float) -> None:
    # Every component leads its own process group (ManagedProcess uses a new session).
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pgid}").exists() or _is_zombie(pgid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True
