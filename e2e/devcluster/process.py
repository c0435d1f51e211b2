"""Child processes for the dev cluster: log files, process groups, readiness polling.

Every component (etcd, kube-apiserver, Prometheus, ...) runs in its own process group so that
stopping it also stops anything it forked, and every live process is tracked in a registry so a
pytest hook can print its log when a test fails and an atexit hook can stop it if a test run
dies halfway.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_LIVE: dict[int, ManagedProcess] = {}


# Ports handed out by free_port: below the kernel's ephemeral range (32768-60999 by default),
# so no client connection can take one as its source port between free_port and the server's
# bind, and one block per pytest-xdist worker, so two workers never hand out the same port.
# Within its block a process starts at a random place and moves on, skipping ports in use: two
# runs with the same block (two test runs side by side) are unlikely to meet.
PORTS_FIRST, PORTS_PER_WORKER, PORT_WORKERS = 10_000, 2_000, 11
_port_cursor: itertools.count[int] | None = None


def worker_index() -> int:
    """This pytest-xdist worker's number (gw0 -> 0, gw1 -> 1 ...); 0 outside xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker[:2] == "gw" and worker[2:].isdigit() else 0


def _port_block() -> range:
    start = PORTS_FIRST + (worker_index() % PORT_WORKERS) * PORTS_PER_WORKER
    return range(start, start + PORTS_PER_WORKER)


def free_port() -> int:
    """A TCP port that nothing is bound to right now, from this worker's own block."""
    global _port_cursor
    block = _port_block()
    if _port_cursor is None:
        _port_cursor = itertools.count(random.SystemRandom().randrange(len(block)))
    for _ in range(len(block)):
        port = block[next(_port_cursor) % len(block)]
        if _bindable(port):
            return port
    raise RuntimeError(f"no free TCP port in {block.start}-{block.stop - 1}")


def _bindable(port: int) -> bool:
    """Nothing is bound to `port` on any address (so a server may bind it on any)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


def processes_mentioning(text: str) -> dict[int, str]:
    """Every process whose command line contains `text`: pid -> command line."""
    found = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):  # it ended while we looked
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            if text in line:
                found[int(cmdline.parent.name)] = line
    return found


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    process: ManagedProcess | None = None,
) -> T:
    """Poll `probe` until it returns a non-None value; fail fast if `process` dies meanwhile.

    Readiness is always observed, never assumed after a sleep: `interval` only paces the polling.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        if process is not None and not process.running:
            raise RuntimeError(
                f"{process.name} exited with {process.returncode} while waiting for {what}\n"
                f"--- last lines of {process.log_path} ---\n{process.log_tail()}"
            )
        try:
            result = probe()
            if result is not None:
                return result
        except Exception as exc:
            last_error = exc
        if time.monotonic() > deadline:
            tail = f"\n--- {process.log_path} ---\n{process.log_tail()}" if process else ""
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}: {last_error}{tail}")
        time.sleep(interval)


class ManagedProcess:
    """One long-running component with its output appended to a log file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, cwd: Path | None = None):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start: {' '.join(self.argv)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                start_new_session=True,  # own process group: stop() reaches its children too
            )
        _LIVE[self._popen.pid] = self

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode if self._popen else None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds. Safe to call twice."""
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            _signal_group(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(popen.pid, signal.SIGKILL)
                popen.wait(timeout=grace)
        # The leader is gone; make sure no child it forked outlives it.
        _signal_group(popen.pid, signal.SIGKILL)
        _LIVE.pop(popen.pid, None)

    def detach(self) -> int:
        """Let the process outlive this Python process (`dev up`); returns its pid.

        It leaves the registry, so neither the atexit hook nor failure reports touch it again.
        """
        if self._popen is None or not self.running:
            raise RuntimeError(f"{self.name} is not running")
        _LIVE.pop(self._popen.pid, None)
        pid = self._popen.pid
        self._popen = None
        return pid

    def log_tail(self, max_bytes: int = 12_000) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - max_bytes))
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return "(no log)"


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def live_processes() -> list[ManagedProcess]:
    return list(_LIVE.values())


@atexit.register
def _stop_all_at_exit() -> None:
    # Last line of defence: a crashed test session must not leave an apiserver running.
    for proc in reversed(live_processes()):
        proc.stop(grace=5.0)
