"""The receipt keys of a ModelDeployment: the Secret ``<name>-receipt-keys`` and its rotation.

Every model server signs prediction receipts with the newest key whose ``activeFrom`` has
passed and verifies with every key in the file, so a label can be posted to any pod. The
rules that keep a label in flight redeemable, whatever the rotation does:

- the first key is active at once (no pod exists yet, none can miss it);
- a new key becomes active only ``activation_delay`` after it is added, long enough for the
  kubelet to put it into every pod's copy of the Secret: no pod meets a receipt signed with a
  key it has not been given yet;
- a key is dropped only once its successor has been active longer than the feedback horizon
  plus ``RETIRE_MARGIN``: it signed nothing since, so every receipt it signed has expired.

Pure: the time and the random bytes come from the caller.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from coalmine.manifests.labels import Manifest, Owner, metadata

KEYS_FILE = "keys.json"
"""The Secret's data key, and the file name in the mount."""
MOUNT_DIR = "/var/run/coalmine/receipts"
KEYS_PATH = f"{MOUNT_DIR}/{KEYS_FILE}"
VOLUME = "receipt-keys"
MIRROR_FILE = "mirror.json"
"""Also in this Secret, beside the keys: where a stable pod mirrors at a shadow step. Every pod
already mounts the Secret's directory and the server re-reads the file, so a shadow step
starts and stops without touching stable's pod template (no restart)."""
MIRROR_PATH = f"{MOUNT_DIR}/{MIRROR_FILE}"
KEY_BYTES = 32
RETIRE_MARGIN = timedelta(minutes=10)
"""Beyond the horizon before a replaced key goes: clock skew between pods, and a pod whose
copy of the Secret was late to show the successor (it signed with the old key meanwhile)."""


def secret_name(owner: Owner) -> str:
    """``iris`` -> ``iris-receipt-keys``."""
    return f"{owner.name}-receipt-keys"


@dataclass(frozen=True)
class ReceiptKey:
    """One receipt MAC key as the model server reads it."""

    id: str
    secret: str
    """Base64 of ``KEY_BYTES`` random bytes."""
    active_from: datetime
    """When pods start signing with it (they verify with it as soon as they have it)."""

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "secret": self.secret, "activeFrom": _rfc3339(self.active_from)}


@dataclass(frozen=True)
class KeyPolicy:
    """When to add a key and when a replaced one may go."""

    rotation: timedelta
    activation_delay: timedelta
    horizon: timedelta

    @property
    def keep_replaced(self) -> timedelta:
        """How long a key stays after its successor became active."""
        return self.horizon + RETIRE_MARGIN


@dataclass(frozen=True)
class RingChange:
    """The keys after one tick, and what changed (for Events)."""

    keys: tuple[ReceiptKey, ...]
    added: ReceiptKey | None = None
    retired: tuple[str, ...] = ()


def parse_keys(text: str) -> tuple[ReceiptKey, ...]:
    """The keys of a ``keys.json``, oldest first; ``ValueError`` saying what is wrong."""
    try:
        listed = json.loads(text)["keys"]
        keys = tuple(_parse_key(item) for item in listed)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{KEYS_FILE} is not a receipt key file ({exc})") from exc
    if len({key.id for key in keys}) != len(keys):
        raise ValueError(f"{KEYS_FILE} lists a key id twice")
    return _ordered(keys)


def _parse_key(item: Any) -> ReceiptKey:
    secret = str(item["secret"])
    if len(base64.b64decode(secret, validate=True)) < KEY_BYTES:
        raise ValueError(f"key {item['id']!r} is shorter than {KEY_BYTES} bytes")
    active = datetime.fromisoformat(str(item["activeFrom"]).replace("Z", "+00:00"))
    if active.tzinfo is None:
        raise ValueError(f"key {item['id']!r}: activeFrom has no time zone")
    return ReceiptKey(id=str(item["id"]), secret=secret, active_from=active.astimezone(UTC))


def render_keys(keys: tuple[ReceiptKey, ...]) -> str:
    """The ``keys.json`` text: the same keys always give the same text."""
    return json.dumps({"keys": [key.to_json() for key in _ordered(keys)]}, sort_keys=True)


def new_key(active_from: datetime, taken: set[str], random_bytes: bytes) -> ReceiptKey:
    """A key named after its activation second (``k20261201t031000``), unique in ``taken``.
    Whole seconds, as the file writes them, so the key read back is the key written."""
    active_from = active_from.astimezone(UTC).replace(microsecond=0)
    base = "k" + active_from.strftime("%Y%m%dt%H%M%S")
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    secret = base64.b64encode(random_bytes).decode()
    return ReceiptKey(id=name, secret=secret, active_from=active_from)


def next_keys(
    keys: tuple[ReceiptKey, ...],
    now: datetime,
    policy: KeyPolicy,
    *,
    rotate: bool,
    random_bytes: Callable[[], bytes],
) -> RingChange:
    """The keys this tick should leave in the Secret.

    ``rotate`` is a person's request (``kubectl coalmine rotate-keys``): a new key now, unless
    one is already waiting to become active (that one answers the request).
    """
    ordered = _ordered(keys)
    added = None
    if not ordered:
        added = new_key(now, set(), random_bytes())
    else:
        newest = ordered[-1]
        waiting = newest.active_from > now
        due = now - newest.active_from >= policy.rotation
        if not waiting and (due or rotate):
            taken = {key.id for key in ordered}
            added = new_key(now + policy.activation_delay, taken, random_bytes())
    kept = _unexpired(ordered, now, policy)
    retired = tuple(key.id for key in ordered if key not in kept)
    return RingChange(
        keys=_ordered((*kept, *([added] if added else []))), added=added, retired=retired
    )


def _unexpired(
    ordered: tuple[ReceiptKey, ...], now: datetime, policy: KeyPolicy
) -> tuple[ReceiptKey, ...]:
    """Every key but those replaced long enough ago that all they signed has expired."""
    replaced = pairwise(ordered)
    kept = [
        key for key, successor in replaced if now < successor.active_from + policy.keep_replaced
    ]
    return (*kept, *ordered[-1:])  # the newest key has no successor: it always stays


def next_change(keys: tuple[ReceiptKey, ...], now: datetime, policy: KeyPolicy) -> datetime | None:
    """When ``next_keys`` will next change the keys by itself (a rotation or a retirement)."""
    ordered = _ordered(keys)
    if not ordered:
        return None
    moments = [ordered[-1].active_from + policy.rotation]
    moments += [key.active_from + policy.keep_replaced for key in ordered[1:]]
    future = [moment for moment in moments if moment > now]
    return min(future, default=None)


def signing_key(keys: tuple[ReceiptKey, ...], now: datetime) -> ReceiptKey | None:
    """The key pods sign with at ``now`` (the newest active one), as the server chooses it."""
    active = [key for key in _ordered(keys) if key.active_from <= now]
    return active[-1] if active else None


def keys_in(secret: Manifest) -> tuple[ReceiptKey, ...]:
    """The keys a Secret holds (``ValueError`` if its ``keys.json`` is missing or broken)."""
    data = secret.get("data") or {}
    if KEYS_FILE not in data:
        raise ValueError(f"the Secret has no {KEYS_FILE}")
    return parse_keys(base64.b64decode(data[KEYS_FILE]).decode())


def receipt_keys_secret(owner: Owner, keys: tuple[ReceiptKey, ...]) -> Manifest:
    """The Secret holding ``keys``, owned by the ModelDeployment (collected with it)."""
    text = render_keys(keys)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(owner, secret_name(owner), {}),
        "type": "Opaque",
        "data": {KEYS_FILE: base64.b64encode(text.encode()).decode()},
    }


def _ordered(keys: tuple[ReceiptKey, ...] | list[ReceiptKey]) -> tuple[ReceiptKey, ...]:
    return tuple(sorted(keys, key=lambda key: (key.active_from, key.id)))


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_mirror(url: str | None, share: int, canary_revision: str) -> str:
    """The mirror file: ``{}`` (off) when there is no target.

    >>> render_mirror("http://10.96.0.9:8080", 50, "abc")
    '{"canaryRevision":"abc","share":0.5,"url":"http://10.96.0.9:8080"}'
    """
    if url is None or share <= 0:
        return "{}"
    body = {"url": url, "share": share / 100, "canaryRevision": canary_revision}
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def mirror_in(secret: Manifest) -> str:
    """The mirror file the Secret holds now (``{}`` when none)."""
    raw = (secret.get("data") or {}).get(MIRROR_FILE)
    return base64.b64decode(raw).decode() if raw else "{}"


def mirror_patch(text: str) -> Manifest:
    """A merge patch of the mirror file alone: the keys are never touched by it."""
    return {"data": {MIRROR_FILE: base64.b64encode(text.encode()).decode()}}
