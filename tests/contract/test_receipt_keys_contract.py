"""The keys file the operator writes is the one the server reads: same keys, same signer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from coalmine.manifests.receiptkeys import new_key, render_keys, signing_key
from coalmine_serving.service.receipts import newest_active, parse_keys


def test_the_servers_read_the_operators_keys_and_pick_the_same_signer():
    now = datetime(2026, 12, 1, 3, 10, 0, 123456, tzinfo=UTC)
    first = new_key(now - timedelta(days=31), set(), b"a" * 32)
    second = new_key(now, {first.id}, b"b" * 32)
    waiting = new_key(now + timedelta(seconds=120), {first.id, second.id}, b"c" * 32)
    same_second = new_key(now, {first.id, second.id, waiting.id}, b"d" * 32)
    keys = (first, second, waiting, same_second)
    read = parse_keys(render_keys(keys).encode())
    assert set(read) == {key.id for key in keys} and same_second.id.endswith("-2")
    assert read[first.id].secret == b"a" * 32
    operator_choice = signing_key(keys, now)
    assert operator_choice is not None
    assert newest_active(read.values(), now.timestamp()).id == operator_choice.id
