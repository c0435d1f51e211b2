"""Receipts: a label joins on any pod sharing the keys, once, within the horizon, never forged."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from prometheus_client import generate_latest

from coalmine_serving.errors import (
    DuplicateLabelError,
    ExpiredLabelError,
    ForgedReceiptError,
    UnknownKeyError,
)
from coalmine_serving.metrics import ServingMetrics
from coalmine_serving.service.feedback import FeedbackJoiner
from coalmine_serving.service.joined import JoinedReceipts
from coalmine_serving.service.receipts import KeyRing, parse_keys
from coalmine_serving.settings import Task, load_settings

NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def write_keys(path: Path, *keys: tuple[str, bytes, str]) -> Path:
    doc = {
        "keys": [
            {"id": key_id, "secret": base64.b64encode(secret).decode(), "activeFrom": active}
            for key_id, secret, active in keys
        ]
    }
    path.write_bytes(orjson.dumps(doc))
    return path


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    return write_keys(tmp_path / "keys.json", ("k1", b"a" * 32, "2020-01-01T00:00:00Z"))


def pod(keys_file: Path | None, clock: Clock, **identity: Any) -> FeedbackJoiner:
    settings = load_settings(
        model_name="iris",
        receipt_keys_file=keys_file,
        feedback_horizon_seconds=3600,
        **{"model_version": "1", "variant": "stable", "revision": "r1", **identity},
    )
    return FeedbackJoiner(settings, ServingMetrics(settings), clock)


def feedback_lines(joiner: FeedbackJoiner) -> list[str]:
    text = generate_latest(joiner.metrics.registry).decode()
    return [line for line in text.splitlines() if line.startswith("coalmine_feedback_total{")]


def test_a_label_joins_on_another_pod_and_counts_for_the_pod_that_predicted(keys_file: Path):
    clock = Clock()
    canary = pod(keys_file, clock, model_version="2", variant="canary", revision="r2")
    stable = pod(keys_file, clock)
    receipt = canary.receipt_for(np.array([1, 0, 1]), Task.CLASSIFICATION)
    clock.now += 1800  # half an hour later, at whichever pod the Service picked
    assert stable.join(receipt, [1, 1, 1])["correct"] == 2
    assert all(line.endswith(" 0.0") for line in feedback_lines(stable))  # first scrape: zero
    lines = feedback_lines(stable)
    assert (
        'coalmine_feedback_total{model="iris",result="correct",revision="r2",'
        'variant="canary",version="2"} 2.0'
    ) in lines
    assert any(
        'result="incorrect",revision="r2"' in line and line.endswith(" 1.0") for line in lines
    )


def test_a_restarted_pod_joins_labels_for_predictions_made_before(keys_file: Path):
    clock = Clock()
    receipt = pod(keys_file, clock).receipt_for(np.array([0.5]), Task.REGRESSION)
    restarted = pod(keys_file, clock)
    assert restarted.join(receipt, 1.5)["meanAbsoluteError"] == 1.0


def test_forged_tampered_foreign_and_late_labels_are_refused_and_counted(keys_file, tmp_path):
    clock = Clock()
    joiner = pod(keys_file, clock)
    receipt = joiner.receipt_for(np.array([1]), Task.CLASSIFICATION)
    head, payload, mac = receipt.split(".")
    flipped = base64.urlsafe_b64encode(
        base64.urlsafe_b64decode(payload + "==").replace(b"[1]", b"[0]")
    ).rstrip(b"=")
    with pytest.raises(ForgedReceiptError, match="signature"):
        joiner.join(f"{head}.{flipped.decode()}.{mac}", 0)
    with pytest.raises(ForgedReceiptError, match="not a prediction receipt"):
        joiner.join("order-17", 1)
    other_keys = write_keys(tmp_path / "other.json", ("k1", b"b" * 32, "2020-01-01T00:00:00Z"))
    with pytest.raises(ForgedReceiptError):  # same key id, another deployment's secret
        pod(other_keys, clock).join(receipt, 1)
    with pytest.raises(UnknownKeyError):
        joiner.join("k9." + payload + "." + mac, 1)
    clock.now += 3601
    with pytest.raises(ExpiredLabelError, match="past the feedback horizon"):
        joiner.join(receipt, 1)
    counted = {r.value: c._value.get() for r, c in joiner.metrics.unmatched.items()}
    assert counted == {"forged": 2, "unknown": 1, "duplicate": 0, "expired": 1}


def test_a_receipt_for_another_model_is_refused(keys_file: Path):
    clock = Clock()
    other = FeedbackJoiner(
        load_settings(model_name="wine", receipt_keys_file=keys_file),
        ServingMetrics(load_settings(model_name="wine")),
        clock,
    )
    receipt = other.receipt_for(np.array([1]), Task.CLASSIFICATION)
    with pytest.raises(ForgedReceiptError, match="model 'wine'"):
        pod(keys_file, clock).join(receipt, 1)


def test_without_a_keys_file_labels_join_only_on_the_same_process():
    clock = Clock()
    first, second = pod(None, clock), pod(None, clock)
    receipt = first.receipt_for(np.array([1]), Task.CLASSIFICATION)
    with pytest.raises(ForgedReceiptError):
        second.join(receipt, 1)
    assert first.join(receipt, 1)["correct"] == 1


def test_rotation_signs_with_the_new_key_once_active_and_old_receipts_still_join(tmp_path):
    clock = Clock()
    path = write_keys(tmp_path / "keys.json", ("k1", b"a" * 32, "2020-01-01T00:00:00Z"))
    joiner = pod(path, clock)
    old = joiner.receipt_for(np.array([1]), Task.CLASSIFICATION)
    write_keys(
        path,
        ("k1", b"a" * 32, "2020-01-01T00:00:00Z"),
        ("k2", b"c" * 32, "2028-01-01T00:00:00Z"),  # after NOW: known, not yet signing
    )
    joiner.receipts._keys._checked = float("-inf")  # skip the reload interval
    assert joiner.receipt_for(np.array([1]), Task.CLASSIFICATION).startswith("k1.")
    clock.now = 1_900_000_000.0  # 2030: k2 is active
    joiner.receipts._keys._checked = float("-inf")
    assert joiner.receipt_for(np.array([1]), Task.CLASSIFICATION).startswith("k2.")
    clock.now = NOW + 10
    assert joiner.join(old, 1)["correct"] == 1


def test_a_full_duplicate_memory_refuses_old_receipts_rather_than_count_twice(keys_file: Path):
    clock = Clock()
    settings = load_settings(receipt_keys_file=keys_file, feedback_dedupe_entries=2)
    joiner = FeedbackJoiner(settings, ServingMetrics(settings), clock)
    receipts = []
    for _ in range(3):
        receipts.append(joiner.receipt_for(np.array([1]), Task.CLASSIFICATION))
        clock.now += 10
    for receipt in receipts:
        joiner.join(receipt, 1)
    with pytest.raises(ExpiredLabelError, match="duplicate memory is full"):
        joiner.join(receipts[0], 1)  # forgotten: cannot tell
    with pytest.raises(DuplicateLabelError):
        joiner.join(receipts[2], 1)  # still remembered


def test_joined_receipts_forget_the_oldest_and_raise_the_floor():
    joined = JoinedReceipts(capacity=2)
    joined.add(b"a", 100)
    joined.add(b"b", 50)
    joined.add(b"c", 70)
    assert b"a" not in joined and len(joined) == 2
    assert joined.too_old(100) and not joined.too_old(101)


def test_keys_documents_are_checked():
    with pytest.raises(ValueError, match="no keys"):
        parse_keys(b'{"keys": []}')
    with pytest.raises(ValueError, match="at least 16 bytes"):
        parse_keys(
            orjson.dumps({"keys": [{"id": "a", "secret": "YQ==", "activeFrom": "2020-01-01"}]})
        )
    with pytest.raises(ValueError, match="not a keys document"):
        parse_keys(b"[]")


def test_an_unreadable_keys_file_stops_startup(tmp_path: Path):
    (tmp_path / "keys.json").write_text("{")
    with pytest.raises(ValueError, match="receipt keys file"):
        KeyRing(tmp_path / "keys.json")
