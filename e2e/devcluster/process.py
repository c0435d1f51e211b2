"""Child processes for the dev cluster: log files, process groups, readiness polling.

Every component (etcd, kube-apiserver, Prometheus, ...) runs in its own process group so that
stopping it also stops anything it forked, and every live process is tracked in a registry so a
pytest hook can print its log when a test fails and an atexit hook can stop it if a test run
dies halfway.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_LIVE: dict[int, ManagedProcess] = {}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
