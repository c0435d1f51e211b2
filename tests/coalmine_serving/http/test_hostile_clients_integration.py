"""Hostile clients against a real `coalmine-serve` process over real sockets.

Idle and slow-header sockets, oversized headers and ids, bodies far over the limit (sent the
way Python's urllib sends them: the whole body before reading), and predict threads stuck past
their deadline. See coalmine_serving/http/protocol.py for what each guard does.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from coalmine_serving.cli import server_config
from coalmine_serving.http.app import create_app
from coalmine_serving.settings import load_settings
from tests.coalmine_serving import models
from tests.coalmine_serving.http.test_app import ROW, SlowRuntime, _infer_body

pytestmark = pytest.mark.integration
INFER = "/v2/models/iris/infer"


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    return sock


def _read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


@pytest.mark.parametrize("server", [("--header-timeout-seconds", "3")], indirect=True)
def test_idle_and_slow_header_sockets_starve_neither_probes_nor_predictions(server) -> None:  # type: ignore[no-untyped-def]
    # uvicorn alone counted open sockets against its limit: ~96 of these made every request
    # 503, probes included, for as long as the client pleased.
    with ExitStack() as stack:
        idle = [stack.enter_context(_connect(server.port)) for _ in range(200)]
        slow = [stack.enter_context(_connect(server.port)) for _ in range(200)]
        for sock in slow:
            sock.sendall(f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Type: appl".encode())
        opened = time.monotonic()
        with httpx.Client(base_url=server.url, timeout=5) as client:
            for _ in range(5):
                assert client.get("/v2/health/ready").status_code == 200
                assert client.get("/v2/health/live").status_code == 200
                assert client.post(INFER, json=_infer_body([ROW])).status_code == 200
                for sock in slow[:50]:
                    sock.sendall(b"i")  # trickling does not extend the header deadline
        assert time.monotonic() - opened < 3, "the checks above must run before the deadline"
        # Past the header deadline: the slow ones read a 408, the idle ones are closed.
        replies = [_read_until_closed(sock, 10) for sock in slow]
        assert all(r.startswith(b"HTTP/1.1 408 ") for r in replies), {r[:40] for r in replies}
        assert b"request headers not received within 3s" in replies[0]
        assert all(_read_until_closed(sock, 10) == b"" for sock in idle)
        assert time.monotonic() - opened < 8


def test_oversized_request_id_and_headers_are_refused(server) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=server.url, timeout=10) as client:
        long_id = client.post(INFER, json=_infer_body([ROW]), headers={"x-request-id": "a" * 257})
        assert long_id.status_code == 400
        assert "x-request-id is 257 characters; at most 256" in long_id.json()["error"]
        ok_id = client.post(INFER, json=_infer_body([ROW]), headers={"x-request-id": "a" * 256})
        assert ok_id.status_code == 200 and ok_id.headers["x-request-id"] == "a" * 256
        big = client.get("/v2/health/ready", headers={"x-big": "b" * 40_000})
        assert big.status_code == 431
        assert "request line and headers exceed 32768 bytes" in big.text
        assert client.get("/v2/health/ready").status_code == 200
    # Headers that never end: refused once over the cap, not buffered as long as they come.
    with _connect(server.port) as sock:
        sock.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        sent = 0
        try:
            while sent < 64 * 1024 * 1024:
                sock.sendall(b"c" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = _read_until_closed(sock, 15)
    # The server stopped reading after the cap and a short drain (1 MiB), plus kernel buffers.
    assert sent < 16 * 1024 * 1024, sent
    assert reply.startswith(b"HTTP/1.1 431 ") or reply == b""


def test_urllib_client_with_a_32_mb_body_reads_the_413(server) -> None:  # type: ignore[no-untyped-def]
    # urllib writes the whole body before reading: closing right after the 413 reset the
    # connection under it ("connection reset by peer"), so the client never saw the reason.
    request = urllib.request.Request(
        server.url + INFER, data=b"x" * (32 * 1024 * 1024), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413
    assert b"request body of 33554432 bytes exceeds 4194304" in refused.value.read()
    assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200


@pytest.mark.parametrize(
    "server",
    [("--refused-body-drain-bytes", str(4 * 1024 * 1024), "--refused-body-drain-seconds", "2")],
    indirect=True,
)
def test_after_a_413_the_server_reads_a_bounded_amount_then_closes(server) -> None:  # type: ignore[no-untyped-def]
    head = f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: {10**12}\r\n\r\n".encode()
    # A fast client with an endless body: cut off after the byte bound, not read to the end.
    with _connect(server.port) as sock:
        sock.sendall(head)
        sent, started = 0, time.monotonic()
        try:
            while time.monotonic() - started < 20:
                sock.sendall(b"z" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        elapsed = time.monotonic() - started
    # 4 MiB read by the server plus what the two kernels buffer (a few MiB on loopback).
    assert sent < 24 * 1024 * 1024 and elapsed < 5, (sent, elapsed)
    # A slow client: reads the 413 and the end of the reply at once, and may keep sending
    # until the time bound, no longer.
    with _connect(server.port) as sock:
        sock.sendall(head)
        started = time.monotonic()
        reply = _read_until_closed(sock, 5)  # the reply, then the server's FIN
        try:
            while time.monotonic() - started < 20:
                sock.sendall(b"z" * 100)
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        elapsed = time.monotonic() - started
    assert reply.startswith(b"HTTP/1.1 413 ") and b"connection: close" in reply
    assert 1.5 < elapsed < 6, elapsed


@contextmanager
def _in_process_server(runtime: SlowRuntime, **settings: object) -> Iterator[str]:
    """The product's uvicorn config (our protocol, limits) in a thread, for a runtime whose
    predict the test holds; a real socket all the same."""
    port = models.free_port()
    config = load_settings(port=port, host="127.0.0.1", **settings)  # type: ignore[arg-type]
    server = uvicorn.Server(server_config(config, create_app(config, model=runtime), port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        runtime.gate.set()
        server.should_exit = True
        thread.join(10)


def _wait_for(url: str, status: int, timeout: float = 10) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=1)
            if response.status_code == status:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} never answered {status}")


def test_readiness_fails_while_every_predict_thread_is_stuck_and_recovers() -> None:
    runtime = SlowRuntime()
    runtime.gate.set()  # warm-up passes
    settings = {
        "predict_threads": 2, "inline_predict_max_seconds": 0, "request_timeout_seconds": 0.5,
    }  # fmt: skip
    with _in_process_server(runtime, **settings) as base:
        _wait_for(f"{base}/v2/health/ready", 200)
        runtime.gate.clear()  # from now on every predict blocks until the test lets it go
        with ThreadPoolExecutor(2) as pool:
            stuck = [
                pool.submit(httpx.post, f"{base}/v2/models/model/infer", json=_infer_body([ROW]))
                for _ in range(2)
            ]
            assert all(f.result(5).status_code == 504 for f in stuck)  # deadline answered...
            # ...but the threads still run the predicts: past the deadline, not ready.
            not_ready = _wait_for(f"{base}/v2/health/ready", 503, timeout=5)
            assert "all 2 predict threads have been busy for over 0.5s" in not_ready.text
            assert httpx.get(f"{base}/v2/health/live").status_code == 200
            runtime.gate.set()  # the predicts finish, the threads are free again
            _wait_for(f"{base}/v2/health/ready", 200, timeout=5)


def test_one_stuck_thread_of_two_keeps_the_pod_ready() -> None:
    runtime = SlowRuntime()
    runtime.gate.set()
    settings = {
        "predict_threads": 2, "inline_predict_max_seconds": 0, "request_timeout_seconds": 0.3,
    }  # fmt: skip
    with _in_process_server(runtime, **settings) as base:
        _wait_for(f"{base}/v2/health/ready", 200)
        runtime.gate.clear()
        with ThreadPoolExecutor(1) as pool:
            one = pool.submit(httpx.post, f"{base}/v2/models/model/infer", json=_infer_body([ROW]))
            assert one.result(5).status_code == 504
            time.sleep(0.5)  # past the deadline by now
            assert httpx.get(f"{base}/v2/health/ready").status_code == 200
            runtime.gate.set()


def test_metrics_port_serves_metrics_and_probes_only(artifacts, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    internal = models.free_port()
    proc = models.ServerProcess(
        artifacts["onnx_clf"], tmp_path / "server.log", "--metrics-port", str(internal)
    )
    try:
        proc.wait_ready()
        assert httpx.post(proc.url + INFER, json=_infer_body([ROW])).status_code == 200
        inside = f"http://127.0.0.1:{internal}"
        metrics = httpx.get(f"{inside}/metrics")
        assert metrics.status_code == 200 and "coalmine_requests_total" in metrics.text
        assert httpx.get(f"{inside}/v2/health/ready").json() == {"ready": True}
        assert httpx.get(f"{inside}/v2/health/live").status_code == 200
        # Inference and metadata are not on the internal port.
        assert httpx.post(inside + INFER, json=_infer_body([ROW])).status_code == 404
        assert httpx.get(f"{inside}/v2/models/iris").status_code == 404
        # /metrics stays on the serving port too: existing scrape configs keep working.
        assert httpx.get(f"{proc.url}/metrics").status_code == 200
    finally:
        proc.stop()
    # Both servers stopped on SIGTERM within the grace period (uvicorn re-raises the signal
    # after a clean shutdown; a hang would have ended in SIGKILL).
    assert proc.process.returncode == -signal.SIGTERM
    assert "Application shutdown complete" in (tmp_path / "server.log").read_text()


@pytest.mark.parametrize("server", [("--request-timeout-seconds", "1")], indirect=True)
def test_a_feedback_body_trickled_slowly_gets_408(server) -> None:  # type: ignore[no-untyped-def]
    # Inference bodies already had the request deadline; feedback had no timer at all.
    with _connect(server.port) as sock:
        sock.sendall(
            b"POST /v2/models/iris/feedback HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"receipt":'
        )
        started = time.monotonic()
        reply = _read_until_closed(sock, 10)
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert b"request body not received within 1s" in reply
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "server", [("--max-concurrency", "1", "--request-timeout-seconds", "5")], indirect=True
)
def test_over_the_request_cap_probes_metrics_and_inference_are_still_served(server) -> None:  # type: ignore[no-untyped-def]
    # 40 feedback requests whose bodies never finish hold their slots (cap: 1 + 32).
    head = (
        b"POST /v2/models/iris/feedback HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    with ExitStack() as stack:
        for _ in range(40):
            stack.enter_context(_connect(server.port)).sendall(head)
        time.sleep(0.5)
        with httpx.Client(base_url=server.url, timeout=3) as client:
            shed = client.get("/v2")
            assert shed.status_code == 503 and "more than 33 requests in flight" in shed.text
            assert client.get("/v2/health/ready").status_code == 200
            assert client.get("/v2/health/live").status_code == 200
            assert client.get("/metrics").status_code == 200
            assert client.post(INFER, json=_infer_body([ROW])).status_code == 200
