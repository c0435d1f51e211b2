"""The app in-process (Starlette TestClient): routes, outcomes, metrics and feedback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from coalmine_serving.http.app import create_app
from coalmine_serving.runtimes.base import Signature
from coalmine_serving.settings import Task, load_settings

ROW = [0.9, 0.1, 0.1, 0.1]


def _infer_body(rows: list[list[float]], request_id: str | None = None) -> dict:  # type: ignore[type-arg]
    body = {"inputs": [{"name": "x", "shape": [len(rows), 4], "datatype": "FP64", "data": rows}]}
    return body | ({"id": request_id} if request_id else {})


@contextmanager
def client_for(artifact, **extra: object) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = load_settings(
        model_name="iris", model_version="3", model_uri=str(artifact.path),
        model_format=artifact.fmt, sha256=artifact.sha256, **extra,
    )  # fmt: skip
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        yield client


def wait_ready(client: TestClient, expect: int = 200) -> None:
    for _ in range(200):
        if client.get("/v2/health/ready").status_code == expect:
            return
        time.sleep(0.02)
    raise AssertionError(f"readiness never became {expect}")


def wait_for_load_error(client: TestClient) -> httpx.Response:
    """The model loads in the background: poll until loading has failed, not a fixed sleep."""
    for _ in range(500):
        ready = client.get("/v2/health/ready")
        if ready.json().get("error"):
            return ready
        time.sleep(0.02)
    raise AssertionError("the load never failed")


def samples(client: TestClient) -> dict[tuple[str, frozenset], float]:  # type: ignore[type-arg]
    text = client.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(client: TestClient, name: str, **labels: str) -> float:
    wanted = {"model": "iris", "version": "3", "variant": "stable", "revision": "", **labels}
    return samples(client).get((name, frozenset(wanted.items())), 0.0)


def test_v2_and_v1_inference_echo_ids_and_count(artifacts) -> None:  # type: ignore[no-untyped-def]
    with client_for(artifacts["onnx_clf"]) as client:
        for path in ("/v2/models/iris/infer", "/v2/models/iris/versions/3/infer"):
            reply = client.post(path, json=_infer_body([ROW, [0.1] * 4], "req-1"))
            assert reply.status_code == 200, reply.text
            out = reply.json()
            assert out["id"] == "req-1" and out["model_version"] == "3"
            assert out["outputs"][0]["data"] == [1, 0] and reply.headers["x-request-id"] == "req-1"
        v1 = client.post("/v1/models/iris:predict", json={"instances": [ROW]})
        assert v1.json()["predictions"] == [1] and v1.headers["x-request-id"]
        assert v1.json()["receipt"] == v1.headers["coalmine-receipt"]
        assert value(client, "coalmine_requests_total", outcome="success") == 3
        assert value(client, "coalmine_predictions_total", **{"class": "1"}) == 3
        assert value(client, "coalmine_predictions_total", **{"class": "0"}) == 2
        assert value(client, "coalmine_model_ready") == 1


def test_metadata_and_unknown_model_or_version(artifacts) -> None:  # type: ignore[no-untyped-def]
    with client_for(artifacts["onnx_clf"]) as client:
        meta = client.get("/v2/models/iris/versions/3").json()
        assert meta["inputs"][0]["shape"] == [-1, 4] and meta["inputs"][0]["datatype"] == "FP32"
        assert client.get("/v2/models/iris/ready").status_code == 200
        assert client.get("/v2").json()["name"] == "coalmine-serving"
        assert client.get("/v2/models/other").status_code == 404
        wrong = client.post("/v2/models/iris/versions/9/infer", json=_infer_body([ROW]))
        assert wrong.status_code == 404 and "version '9'" in wrong.json()["error"]
        assert value(client, "coalmine_requests_total", outcome="client_error") == 1


def test_client_errors_are_kept_apart_from_server_errors(artifacts) -> None:  # type: ignore[no-untyped-def]
    with client_for(artifacts["onnx_clf"], max_body_bytes=2048, max_rows=5) as client:
        bad = [
            client.post("/v2/models/iris/infer", content=b"{oops"),
            client.post("/v2/models/iris/infer", json=_infer_body([[1.0, 2.0]])),
            client.post("/v2/models/iris/infer", json=_infer_body([ROW] * 6)),
            client.post("/v2/models/iris/infer", content=b"[" + b"1," * 5000 + b"1]"),
        ]
        assert [r.status_code for r in bad] == [400, 400, 413, 413]
        assert all(r.json()["error"] for r in bad)
        assert value(client, "coalmine_requests_total", outcome="client_error") == 4
        assert value(client, "coalmine_requests_total", outcome="server_error") == 0


def test_fault_injection_counts_as_server_error(artifacts) -> None:  # type: ignore[no-untyped-def]
    with client_for(artifacts["onnx_clf"], fault_error_rate=1.0) as client:
        reply = client.post("/v2/models/iris/infer", json=_infer_body([ROW]))
        assert reply.status_code == 500 and "injected" in reply.json()["error"]
        assert value(client, "coalmine_requests_total", outcome="server_error") == 1
        assert value(client, "coalmine_injected_faults_total", kind="error") == 1


def _receipt(client: TestClient, rows: list[list[float]]) -> tuple[str, list]:  # type: ignore[type-arg]
    out = client.post("/v2/models/iris/infer", json=_infer_body(rows)).json()
    return out["parameters"]["receipt"], out["outputs"][0]["data"]


def test_classification_labels_count_correct_and_incorrect_once(artifacts) -> None:  # type: ignore[no-untyped-def]
    with client_for(artifacts["skops_clf"]) as client:
        receipt, _ = _receipt(client, [ROW, [0.1] * 4])
        reply = client.post(
            "/v2/models/iris/feedback", json={"receipt": receipt, "truth": [1, "1"]}
        )
        assert reply.json() == {"version": "3", "variant": "stable", "rows": 2, "correct": 1}
        client.get("/metrics")  # a new origin's series shows 0 first, so increase() counts all
        assert value(client, "coalmine_feedback_total", result="correct") == 1
        assert value(client, "coalmine_feedback_total", result="incorrect") == 1
        again = client.post("/v2/models/iris/feedback", json={"receipt": receipt, "truth": [1, 1]})
        assert again.status_code == 409 and "already has a label" in again.json()["error"]
        assert value(client, "coalmine_feedback_unmatched_total", reason="duplicate") == 1
        receipt, _ = _receipt(client, [ROW])
        short = client.post("/v2/models/iris/feedback", json={"receipt": receipt, "truth": [1, 0]})
        assert short.status_code == 400 and "2 values" in short.json()["error"]
        # A refused truth is not remembered: the corrected label still joins.
        fixed = client.post("/v2/models/iris/feedback", json={"receipt": receipt, "truth": 1})
        assert fixed.status_code == 200


def test_regression_labels_observe_absolute_error(artifacts) -> None:  # type: ignore[no-untyped-def]
    with client_for(artifacts["onnx_reg"]) as client:
        receipt, data = _receipt(client, [ROW])
        assert value(client, "coalmine_prediction_value_count") == 1
        label = {"receipt": receipt, "truth": data[0] + 2}
        reply = client.post("/v2/models/iris/feedback", json=label)
        assert reply.json()["meanAbsoluteError"] == pytest.approx(2.0, abs=1e-3)
        assert value(client, "coalmine_feedback_abs_error_sum") == 0  # first scrape: zero
        assert value(client, "coalmine_feedback_abs_error_sum") == pytest.approx(2.0, abs=1e-3)


def test_a_batch_answers_each_label_and_spoils_none(artifacts) -> None:  # type: ignore[no-untyped-def]
    with client_for(artifacts["onnx_clf"]) as client:
        good = [_receipt(client, [ROW])[0] for _ in range(3)]
        head, payload, mac = good[0].split(".")
        tampered = f"{head}.{payload[:-2]}AA.{mac}"
        labels = [
            {"receipt": good[0], "truth": 1},
            {"receipt": good[1], "truth": 0},
            {"receipt": good[1], "truth": 1},  # second label for one prediction
            {"receipt": tampered, "truth": 1},
            {"receipt": "other-key." + payload + "." + mac, "truth": 1},
            {"receipt": good[2]},  # no truth
            {"id": "order-17", "truth": 1},  # an id proves nothing
        ]
        reply = client.post("/v2/models/iris/feedback", json={"labels": labels})
        body = reply.json()
        assert reply.status_code == 200
        assert [r["status"] for r in body["results"]] == [200, 200, 409, 403, 404, 400, 400]
        assert body["joined"] == 2 and body["rows"] == 2
        assert body["rejected"] == {"duplicate": 1, "forged": 1, "unknown": 1, "invalid": 2}
        for reason in ("duplicate", "forged", "unknown"):
            assert value(client, "coalmine_feedback_unmatched_total", reason=reason) == 1


def test_load_failure_keeps_the_server_unready_with_a_reason(artifacts) -> None:  # type: ignore[no-untyped-def]
    art = artifacts["onnx_clf"]
    settings = load_settings(model_uri=str(art.path), model_format="onnx", sha256="0" * 64)
    with TestClient(create_app(settings)) as client:
        ready = wait_for_load_error(client)
        assert ready.status_code == 503 and "sha256 mismatch" in ready.json()["error"]
        assert client.get("/v2/health/live").status_code == 200
        assert client.post("/v2/models/model/infer", json=_infer_body([ROW])).status_code == 503


class SlowRuntime:
    """A runtime whose predict (and warm-up) waits on a gate: for readiness and timeouts."""

    format = "test"
    signature = Signature("x", 4, np.dtype(np.float64), "y", Task.REGRESSION)

    def __init__(self, delay: float = 0.0) -> None:
        self.gate = threading.Event()
        self.delay = delay

    def predict(self, rows: np.ndarray) -> np.ndarray:
        self.gate.wait(10)
        time.sleep(self.delay)
        return rows.sum(axis=1)


def test_ready_only_after_warm_up_succeeded() -> None:
    runtime = SlowRuntime()
    with TestClient(create_app(load_settings(), model=runtime)) as client:
        assert client.get("/v2/health/ready").status_code == 503
        assert client.get("/v2/health/live").status_code == 200
        runtime.gate.set()
        wait_ready(client)


def test_request_timeout_answers_504(artifacts) -> None:  # type: ignore[no-untyped-def]
    runtime = SlowRuntime(delay=0.5)
    runtime.gate.set()
    settings = load_settings(request_timeout_seconds=0.1)
    with TestClient(create_app(settings, model=runtime)) as client:
        wait_ready(client)
        reply = client.post("/v2/models/model/infer", json=_infer_body([ROW]))
        assert reply.status_code == 504 and "longer than 0.1s" in reply.json()["error"]
        # A deadline hit is counted apart from model errors, and times no latency.
        labels = {"model": "model", "version": "1"}
        assert value(client, "coalmine_requests_total", outcome="timeout", **labels) == 1
        assert value(client, "coalmine_requests_total", outcome="server_error", **labels) == 0
        assert value(client, "coalmine_request_duration_seconds_count", **labels) == 0


class BusyRuntime(SlowRuntime):
    """Burns CPU instead of sleeping, like a real slow model."""

    def predict(self, rows: np.ndarray) -> np.ndarray:
        deadline = time.thread_time() + self.delay
        while time.thread_time() < deadline:
            pass
        return rows.sum(axis=1)


def test_fast_models_run_inline_until_predicts_get_slow() -> None:
    runtime = BusyRuntime()
    app = create_app(load_settings(inline_predict_max_seconds=0.005), model=runtime)
    with TestClient(app) as client:
        wait_ready(client)
        predictor = app.state.service.predictor
        assert predictor.predicts_inline
        predictor.inline_window = 4
        runtime.delay = 0.02  # four times the inline budget
        # One slow predict in a window is forgiven (the OS may have paused us) ...
        for delay in (0.02, 0.0, 0.0, 0.0):
            runtime.delay = delay
            assert client.post("/v2/models/model/infer", json=_infer_body([ROW])).status_code == 200
        assert predictor.predicts_inline
        # ... a majority is not.
        runtime.delay = 0.02
        for expect_inline in (True, True, True, False):
            assert client.post("/v2/models/model/infer", json=_infer_body([ROW])).status_code == 200
            assert predictor.predicts_inline is expect_inline
        assert client.post("/v2/models/model/infer", json=_infer_body([ROW])).status_code == 200


def test_slow_models_never_run_inline() -> None:
    runtime = BusyRuntime(delay=0.01)
    app = create_app(load_settings(inline_predict_max_seconds=0.001), model=runtime)
    with TestClient(app) as client:
        wait_ready(client)
        assert not app.state.service.predictor.predicts_inline


def test_header_injection_through_the_request_id_is_not_echoed(artifacts) -> None:  # type: ignore[no-untyped-def]
    with client_for(artifacts["onnx_clf"]) as client:
        reply = client.post(
            "/v2/models/iris/infer", json=_infer_body([ROW], "a\r\nSet-Cookie: x=1")
        )
        assert reply.status_code == 200 and "set-cookie" not in reply.headers
        assert "x-request-id" not in reply.headers


def test_feedback_and_inference_share_the_model_gate_and_the_body_limit(artifacts) -> None:  # type: ignore[no-untyped-def]
    with client_for(artifacts["onnx_clf"], max_body_bytes=2048) as client:
        for suffix in ("infer", "feedback"):
            wrong = client.post(f"/v2/models/iris/versions/9/{suffix}", json={"receipt": "x"})
            assert wrong.status_code == 404
            assert wrong.json()["error"] == (
                "version '9' of model 'iris' is not served here (this server has '3')"
            )
            big = client.post(f"/v2/models/iris/{suffix}", content=b"x" * 5000)
            assert big.status_code == 413
            assert big.json() == {"error": "request body of 5000 bytes exceeds 2048"}
        unknown = client.get("/no/such/path")
        assert unknown.status_code == 404 and unknown.json() == {"detail": "Not Found"}


def test_a_batch_larger_than_a_slice_keeps_every_answer_in_order(artifacts) -> None:  # type: ignore[no-untyped-def]
    with client_for(artifacts["onnx_clf"]) as client:
        receipts = [_receipt(client, [ROW])[0] for _ in range(300)]  # slices of 256 and 44
        labels = [{"receipt": r, "truth": 1} for r in receipts]
        labels[280] = {"receipt": receipts[0], "truth": 1}  # a duplicate in the second slice
        body = client.post("/v2/models/iris/feedback", json={"labels": labels}).json()
        assert body["joined"] == 299 and body["rejected"] == {"duplicate": 1}
        assert [i for i, r in enumerate(body["results"]) if r["status"] != 200] == [280]
