"""`python -m e2e.devcluster dev up/env/down`: a usable cluster behind, then no process at all."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from e2e.devcluster import devstate
from e2e.devcluster.cli import dev

pytestmark = pytest.mark.integration


def _exists(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its exit status is left to reap


def test_up_env_down(tmp_path: Path) -> None:
    runner = CliRunner()
    state_dir = ["--state-dir", str(tmp_path)]
    pids: list[int] = []
    try:
        started = runner.invoke(dev, ["up", *state_dir])
        assert started.exit_code == 0, started.output
        state = devstate.load(tmp_path)
        assert state is not None
        pids.extend(state.alive().values())
        assert len(pids) == 4  # etcd, kube-apiserver, kube-controller-manager, prometheus

        env = runner.invoke(dev, ["env", *state_dir])
        assert f"export KUBECONFIG={state.kubeconfig}" in env.output
        assert Path(state.kubeconfig).is_file()
        assert httpx.get(f"{state.prometheus_url}/-/ready").status_code == 200

        again = runner.invoke(dev, ["up", *state_dir])
        assert again.exit_code != 0
        assert "already running" in again.output
    finally:
        stopped = runner.invoke(dev, ["down", *state_dir])

    assert stopped.exit_code == 0
    assert not [pid for pid in pids if _exists(pid)]
    assert runner.invoke(dev, ["env", *state_dir]).exit_code != 0
