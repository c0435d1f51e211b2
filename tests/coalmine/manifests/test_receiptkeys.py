"""The receipt-key rules, with a fake clock and counted random bytes: a first key at once, a
new key only after the activation delay, an old key kept until all it signed has expired."""

from __future__ import annotations

import base64
import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest

from coalmine.manifests import Owner, owned_by
from coalmine.manifests.receiptkeys import (
    RETIRE_MARGIN,
    KeyPolicy,
    ReceiptKey,
    keys_in,
    new_key,
    next_change,
    next_keys,
    parse_keys,
    receipt_keys_secret,
    render_keys,
    signing_key,
)

T0 = datetime(2026, 12, 1, 3, 10, 0, 250_000, tzinfo=UTC)
POLICY = KeyPolicy(
    rotation=timedelta(days=30),
    activation_delay=timedelta(seconds=120),
    horizon=timedelta(hours=48),
)
OWNER = Owner(name="iris", namespace="ml", uid="u-1")


def ring(
    keys: tuple[ReceiptKey, ...], now: datetime, rotate: bool = False
) -> tuple[ReceiptKey, ...]:
    counter = itertools.count(len(keys) + 1)
    return next_keys(
        keys, now, POLICY, rotate=rotate, random_bytes=lambda: bytes([next(counter)]) * 32
    ).keys


def test_the_first_key_is_active_at_once_in_whole_seconds():
    change = next_keys((), T0, POLICY, rotate=False, random_bytes=lambda: b"\x07" * 32)
    (key,) = change.keys
    assert change.added == key and change.retired == ()
    assert key.id == "k20261201t031000"
    assert key.active_from == T0.replace(microsecond=0) <= T0
    assert signing_key(change.keys, T0) == key
    assert base64.b64decode(key.secret) == b"\x07" * 32


def test_keys_are_kept_unchanged_until_the_rotation_is_due():
    keys = ring((), T0)
    for later in (
        timedelta(seconds=1),
        timedelta(days=10),
        timedelta(days=30) - timedelta(seconds=1),
    ):
        change = next_keys(keys, T0 + later, POLICY, rotate=False, random_bytes=lambda: b"x" * 32)
        assert change.keys == keys and change.added is None and change.retired == ()


def test_a_due_rotation_adds_a_key_that_signs_only_after_the_activation_delay():
    keys = ring((), T0)
    now = T0 + timedelta(days=30)
    rotated = ring(keys, now)
    old, new = rotated
    assert old == keys[0]
    assert new.active_from == (now + timedelta(seconds=120)).replace(microsecond=0)
    assert new.secret != old.secret
    # Every pod verifies with the new key before any pod signs with it.
    assert signing_key(rotated, now + timedelta(seconds=119)) == old
    assert signing_key(rotated, new.active_from) == new


def test_a_rotation_request_adds_a_key_once_even_if_asked_again_while_it_waits():
    keys = ring((), T0)
    asked = ring(keys, T0 + timedelta(hours=1), rotate=True)
    assert len(asked) == 2
    # The waiting key answers a second request: no pile of keys from repeated requests.
    assert ring(asked, T0 + timedelta(hours=1, seconds=30), rotate=True) == asked
    # Once it signs, a new request adds the next one.
    assert len(ring(asked, T0 + timedelta(hours=2), rotate=True)) == 3


def test_a_replaced_key_stays_until_its_successor_has_signed_longer_than_the_horizon():
    keys = ring(ring((), T0), T0 + timedelta(days=30))
    old, new = keys
    gone_at = new.active_from + POLICY.horizon + RETIRE_MARGIN
    kept = next_keys(
        keys, gone_at - timedelta(seconds=1), POLICY, rotate=False, random_bytes=lambda: b"x" * 32
    )
    assert kept.keys == keys
    dropped = next_keys(keys, gone_at, POLICY, rotate=False, random_bytes=lambda: b"x" * 32)
    assert dropped.keys == (new,) and dropped.retired == (old.id,)


def test_the_newest_key_is_never_dropped_however_old():
    keys = ring((), T0)
    much_later = T0 + timedelta(days=400)
    change = next_keys(keys, much_later, POLICY, rotate=False, random_bytes=lambda: b"y" * 32)
    assert keys[0] in change.keys and change.added is not None
    assert signing_key(change.keys, much_later) == keys[0]  # until the new one is active


def test_with_a_rotation_shorter_than_the_horizon_the_ring_stays_bounded():
    policy = KeyPolicy(timedelta(hours=1), timedelta(seconds=120), timedelta(hours=48))
    keys: tuple[ReceiptKey, ...] = ()
    counter = itertools.count()
    for minute in range(0, 7 * 24 * 60, 10):  # a week of ticks every 10 minutes
        keys = next_keys(
            keys, T0 + timedelta(minutes=minute), policy, rotate=False,
            random_bytes=lambda: next(counter).to_bytes(32, "big"),
        ).keys  # fmt: skip
        assert len(keys) <= 48 + 3
    assert len({key.secret for key in keys}) == len(keys)


def test_next_change_is_the_next_rotation_or_retirement():
    keys = ring((), T0)
    first = keys[0].active_from
    assert next_change(keys, T0, POLICY) == first + POLICY.rotation
    rotated = ring(keys, first + POLICY.rotation)
    retire = rotated[1].active_from + POLICY.horizon + RETIRE_MARGIN
    assert next_change(rotated, first + POLICY.rotation, POLICY) == retire
    assert next_change((), T0, POLICY) is None


def test_key_ids_stay_unique_within_one_second():
    taken = {"k20261201t031000"}
    assert new_key(T0, taken, b"z" * 32).id == "k20261201t031000-2"


def test_the_file_round_trips_in_the_servers_format():
    keys = ring(ring((), T0), T0 + timedelta(days=30))
    text = render_keys(keys)
    assert parse_keys(text) == keys
    document = json.loads(text)
    assert [sorted(item) for item in document["keys"]] == [["activeFrom", "id", "secret"]] * 2
    assert document["keys"][0]["activeFrom"] == "2026-12-01T03:10:00Z"
    assert render_keys(tuple(reversed(keys))) == text  # one text for one set of keys


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("not json", "not a receipt key file"),
        ('{"keys": [{"id": "a"}]}', "not a receipt key file"),
        ('{"keys": [{"id": "a", "secret": "c2hvcnQ=", "activeFrom": "2026-12-01T00:00:00Z"}]}',
         "shorter than 32 bytes"),
        ('{"keys": [{"id": "a", "secret": "' + base64.b64encode(b"k" * 32).decode()
         + '", "activeFrom": "2026-12-01T00:00:00"}]}', "no time zone"),
    ],
)  # fmt: skip
def test_a_broken_file_is_refused_with_the_reason(text: str, complaint: str):
    with pytest.raises(ValueError, match=complaint):
        parse_keys(text)


def test_a_key_id_listed_twice_is_refused():
    (key,) = ring((), T0)
    with pytest.raises(ValueError, match="twice"):
        parse_keys(json.dumps({"keys": [key.to_json(), key.to_json()]}))


def test_the_secret_is_owned_labelled_and_holds_keys_json():
    keys = ring((), T0)
    secret = receipt_keys_secret(OWNER, keys)
    assert secret["metadata"]["name"] == "iris-receipt-keys"
    assert secret["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "coalmine-operator",
        "coalmine.dev/model-deployment": "iris",
    }
    (owner,) = secret["metadata"]["ownerReferences"]
    assert owner["uid"] == "u-1" and owner["controller"] is True
    assert secret["type"] == "Opaque"
    assert keys_in(secret) == keys
    assert owned_by(secret, "u-1")


def test_a_secret_not_controlled_by_this_uid_is_not_ours():
    secret = receipt_keys_secret(OWNER, ring((), T0))
    assert not owned_by(secret, "another-uid")  # a deleted ModelDeployment of the same name
    assert not owned_by({"metadata": {"name": "iris-receipt-keys"}}, "u-1")  # someone's own
    reference = secret["metadata"]["ownerReferences"][0]
    assert not owned_by(
        {"metadata": {"ownerReferences": [{**reference, "controller": False}]}}, "u-1"
    )
    with pytest.raises(ValueError, match=r"no keys\.json"):
        keys_in({"metadata": {}, "data": {}})
