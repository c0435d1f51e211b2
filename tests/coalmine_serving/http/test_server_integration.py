"""The real server on a real socket: `coalmine-serve` processes, a real OIP client (Triton's)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from coalmine_serving.http.app import create_app
from coalmine_serving.settings import load_settings
from tests.coalmine_serving import models
from tests.coalmine_serving.http.test_app import ROW, SlowRuntime, _infer_body

pytestmark = pytest.mark.integration


def test_triton_http_client_speaks_to_our_server(server: models.ServerProcess) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("iris")
        assert client.get_model_metadata("iris")["inputs"][0]["shape"] == [-1, 4]
        rows = np.array([ROW, [0.1] * 4], dtype=np.float32)
        tensor = triton.InferInput("X", list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows, binary_data=False)
        wanted = triton.InferRequestedOutput("label", binary_data=False)
        result = client.infer("iris", [tensor], outputs=[wanted], request_id="triton-1")
        assert result.as_numpy("label").tolist() == [1, 0]
        assert result.get_response()["id"] == "triton-1"
        # The Triton client's default: tensors in the binary extension.
        binary = triton.InferInput("X", list(rows.shape), "FP32")
        binary.set_data_from_numpy(rows)
        assert client.infer("iris", [binary]).as_numpy("label").tolist() == [1, 0]
    finally:
        client.close()


@pytest.mark.parametrize("server", [("--max-body-bytes", "1024")], indirect=True)
def test_oversized_bodies_get_413_with_content_length_and_chunked(server) -> None:  # type: ignore[no-untyped-def]
    url = f"{server.url}/v2/models/iris/infer"
    declared = httpx.post(url, content=b"x" * 100_000)
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(16):
            yield b"x" * 4096

    chunked = httpx.post(url, content=chunks())
    assert chunked.status_code == 413 and "exceeds 1024" in chunked.json()["error"]
    assert httpx.get(f"{server.url}/v2/health/live").status_code == 200


@pytest.mark.parametrize(
    "server", [("--max-concurrency", "2", "--fault-latency-seconds", "0.5")], indirect=True
)
def test_concurrency_limit_sheds_load_with_503(server) -> None:  # type: ignore[no-untyped-def]
    url = f"{server.url}/v2/models/iris/infer"
    with ThreadPoolExecutor(8) as pool:
        codes = sorted(
            pool.map(lambda _: httpx.post(url, json=_infer_body([ROW])).status_code, range(8))
        )
    assert codes.count(200) >= 1 and codes.count(503) >= 1 and set(codes) <= {200, 503}
    scraped = {
        (s.name, s.labels.get("outcome")): s.value
        for family in text_string_to_metric_families(httpx.get(f"{server.url}/metrics").text)
        for s in family.samples
    }
    # Shed for load, not a model error; and the refusals are not in the latency histogram.
    assert scraped["coalmine_requests_total", "shed"] == codes.count(503)
    assert scraped["coalmine_requests_total", "server_error"] == 0
    assert scraped["coalmine_request_duration_seconds_count", None] == codes.count(200)


def test_bad_artifact_exits_nonzero_with_the_reason(artifacts, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    art = artifacts["onnx_clf"]
    broken = models.Artifact(art.path, "f" * 64, "onnx")
    proc = models.ServerProcess(broken, tmp_path / "server.log")
    assert proc.process.wait(30) == 2
    proc.stop()
    assert "sha256 mismatch" in (tmp_path / "server.log").read_text()


def test_slow_predict_does_not_block_the_event_loop() -> None:
    runtime = SlowRuntime(delay=0.0)
    runtime.gate.set()
    port = models.free_port()
    # Thread pool forced: this test is about it (fast models may run inline, tested elsewhere).
    settings = load_settings(port=port, predict_threads=1, inline_predict_max_seconds=0)
    app = create_app(settings, model=runtime)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base)
        runtime.delay = 1.5  # from now on each predict holds a worker thread for 1.5 s
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(httpx.post, f"{base}/v2/models/model/infer", json=_infer_body([ROW]))
            time.sleep(0.3)
            # Health and metrics still answer while the predict thread is busy.
            assert httpx.get(f"{base}/v2/health/live", timeout=1.0).status_code == 200
            assert not slow.done()
            assert slow.result(10).status_code == 200
    finally:
        server.should_exit = True
        thread.join(10)


def _wait_ready(base: str) -> None:
    for _ in range(200):
        try:
            if httpx.get(f"{base}/v2/health/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("not ready")


@pytest.mark.parametrize("server", [("--request-timeout-seconds", "0.5")], indirect=True)
def test_a_body_that_never_finishes_gets_504_and_frees_its_slot(server) -> None:  # type: ignore[no-untyped-def]
    import http.client
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
            b'5\r\n{"inp\r\n'  # ...and then nothing more: a slowloris client
        )
        # Parse the reply with http.client: the head and the body may arrive in
        # separate segments, so a single recv() can return the head alone.
        reply = http.client.HTTPResponse(sock)
        reply.begin()
        body = reply.read().decode()
    assert reply.status == 504 and "longer than 0.5s" in body
    ok = httpx.post(f"{server.url}/v2/models/iris/infer", json=_infer_body([ROW]))
    assert ok.status_code == 200
