"""Finding processes by their command line (how the node's teardown finds orphaned shims), and
free ports that no other pytest-xdist worker hands out."""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from e2e.devcluster import process
from e2e.devcluster.process import processes_mentioning


def test_a_running_process_is_found_by_a_word_of_its_command_line_and_gone_once_it_ended() -> None:
    marker = f"coalmine-test-{uuid.uuid4().hex}"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    try:
        # Right after fork the child still shows the parent's command line, until its exec.
        deadline = time.monotonic() + 10
        while not (found := processes_mentioning(marker)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(found) == [child.pid]
        assert found[child.pid].endswith(f"time.sleep(60) {marker}")
    finally:
        child.kill()
        child.wait()
    assert processes_mentioning(marker) == {}


def test_free_port_gives_each_xdist_worker_its_own_block_below_the_ephemeral_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ephemeral_floor = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for index in range(3):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{index}")
        monkeypatch.setattr(process, "_port_cursor", None)
        ports = [process.free_port() for _ in range(20)]
        assert len(set(ports)) == 20  # a process does not hand out a port twice in a row
        blocks = {(port - process.PORTS_FIRST) // process.PORTS_PER_WORKER for port in ports}
        assert blocks == {index}
        assert max(ports) < ephemeral_floor


def test_free_port_skips_a_port_something_is_bound_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw4")
    monkeypatch.setattr(process, "_port_cursor", None)
    taken = process.free_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", taken))
        listener.listen()
        start = taken - process._port_block().start
        monkeypatch.setattr(process, "_port_cursor", itertools.count(start))
        assert process.free_port() == taken + 1
