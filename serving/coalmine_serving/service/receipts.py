"""Signed prediction receipts: what lets a delayed label join on any pod, after any restart.

Each prediction is answered with a receipt: the predicting pod's identity (model, version,
revision, variant), whether it is a classifier, the issue time, a unique nonce and the
predicted outputs, with a MAC (keyed BLAKE2b) under a key every pod of the ModelDeployment
shares (a Secret the operator manages). A label pipeline keeps the receipt with the request
and posts it back with the true label, hours later, through the Service: whichever pod
answers verifies the MAC and has all it needs to join, so nothing is stored per prediction
and no pod has to survive until the label comes. A client cannot make one up, alter the
outputs it carries, or move it to another version: any change breaks the MAC.

Token: ``<key id>.<base64url JSON payload>.<base64url 16-byte MAC>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from coalmine_serving.errors import ForgedReceiptError, UnknownKeyError

log = logging.getLogger("coalmine_serving")

MAC_BYTES = 16  # 128 bits: forging by guessing is out of reach; halves the token's MAC text
RELOAD_SECONDS = 5.0  # how often the keys file is re-read (the kubelet swaps it in place)
_EPHEMERAL = "local"


class Origin(NamedTuple):
    """Who made a prediction: the labels its delayed truth is counted under."""

    version: str
    variant: str
    revision: str


class Receipt(NamedTuple):
    model: str
    origin: Origin
    classifier: bool  # decides how the label is compared: by class, or by absolute error
    issued_at: int  # unix seconds, from the predicting pod's clock
    mac: bytes  # unique per receipt: the key of the duplicate memory
    outputs: list[Any]  # the predicted outputs as the client got them, one per row


class ReceiptKey(NamedTuple):
    id: str
    secret: bytes
    active_from: float  # unix seconds


class KeyRing:
    """The keys in the operator's Secret: the newest active one signs, all of them verify.

    Without a file (a server run by hand) one random key lives as long as the process, so
    labels join only on that process; a warning says so.
    """

    def __init__(self, path: Path | None, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._clock = clock
        self._raw = b""
        self._checked = float("-inf")
        self._keys: dict[str, ReceiptKey] = {}
        self._signing = ReceiptKey(_EPHEMERAL, os.urandom(32), 0.0)
        if path is None:
            log.warning(
                "no --receipt-keys-file: receipts are signed with a key of this process only, "
                "so labels join only on this process and not after a restart"
            )
            self._keys = {_EPHEMERAL: self._signing}
        else:
            self._reload(force=True)

    def signing_key(self) -> ReceiptKey:
        self._reload()
        return self._signing

    def key(self, key_id: str) -> ReceiptKey | None:
        self._reload()
        return self._keys.get(key_id)

    def _reload(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._path is None or (not force and now - self._checked < RELOAD_SECONDS):
            return
        self._checked = now
        try:
            raw = self._path.read_bytes()
            if raw != self._raw:
                self._keys = parse_keys(raw)
                self._raw = raw
        except (OSError, ValueError) as exc:
            if force:
                raise ValueError(f"receipt keys file {self._path}: {exc}") from None
            log.error(
                "receipt keys file %s unreadable, keeping the keys loaded: %s", self._path, exc
            )
        self._signing = newest_active(self._keys.values(), self._clock())


def parse_keys(raw: bytes) -> dict[str, ReceiptKey]:
    """``{"keys": [{"id", "secret" (base64), "activeFrom" (RFC 3339)}]}`` → keys by id."""
    try:
        doc = orjson.loads(raw)
        keys = [
            ReceiptKey(
                str(item["id"]),
                base64.b64decode(item["secret"], validate=True),
                datetime.fromisoformat(str(item["activeFrom"]).replace("Z", "+00:00")).timestamp(),
            )
            for item in doc["keys"]
        ]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ValueError(f"not a keys document ({type(exc).__name__}: {exc})") from None
    if not keys:
        raise ValueError("no keys")
    if any(len(key.secret) < 16 or "." in key.id for key in keys):
        raise ValueError("every key needs an id without '.' and a secret of at least 16 bytes")
    return {key.id: key for key in keys}


def newest_active(keys: Iterable[ReceiptKey], now: float) -> ReceiptKey:
    """The key to sign with: the newest already active, else the earliest (all in the future
    only happens on a clock far behind the operator's)."""
    ordered = sorted(keys, key=lambda key: key.active_from)
    active = [key for key in ordered if key.active_from <= now]
    return active[-1] if active else ordered[0]


class ReceiptBook:
    """Issues receipts for this pod's predictions and opens the receipts labels come back with."""

    def __init__(
        self, keys: KeyRing, model: str, origin: Origin, clock: Callable[[], float] = time.time
    ) -> None:
        self._keys = keys
        self._model = model
        self._origin = origin
        self._clock = clock
        # A random prefix per process and a counter: unique without a syscall per prediction.
        self._nonce_prefix = os.urandom(6).hex() + "-"
        self._counter = itertools.count()

    def issue(self, outputs: list[Any], classifier: bool) -> str:
        key = self._keys.signing_key()
        version, variant, revision = self._origin
        kind = "c" if classifier else "r"
        nonce = f"{self._nonce_prefix}{next(self._counter):x}"  # unique: equal outputs differ
        issued_at = int(self._clock())
        payload = orjson.dumps(
            [self._model, version, variant, revision, kind, issued_at, nonce, outputs]
        )
        body = f"{key.id}.{_b64(payload)}"
        return f"{body}.{_b64(_mac(key.secret, body))}"

    def open(self, token: str) -> Receipt:
        """Verify ``token`` and read it; raises ForgedReceiptError or UnknownKeyError."""
        body, dot, mac_text = token.rpartition(".")
        key_id, _, payload_text = body.partition(".")
        if not (dot and key_id and payload_text):
            raise ForgedReceiptError("'receipt' is not a prediction receipt")
        key = self._keys.key(key_id)
        if key is None:
            raise UnknownKeyError(
                f"receipt key {key_id[:40]!r} is unknown here: retired, or another deployment's"
            )
        mac = _unb64(mac_text)
        if not hmac.compare_digest(mac, _mac(key.secret, body)):
            raise ForgedReceiptError("receipt signature does not match: altered or forged")
        model, version, variant, revision, kind, issued_at, _nonce, outputs = orjson.loads(
            _unb64(payload_text)
        )
        if model != self._model:
            raise ForgedReceiptError(f"receipt is for model {model!r}, not {self._model!r}")
        origin = Origin(version, variant, revision)
        return Receipt(model, origin, kind == "c", issued_at, mac, outputs)


def _mac(secret: bytes, body: str) -> bytes:
    # Keyed BLAKE2b is a MAC by design (RFC 7693), with no HMAC construction around it: about
    # 2 µs here against 7 µs for HMAC-SHA256, which sets up its key on every call.
    return hashlib.blake2b(body.encode(), key=secret[:64], digest_size=MAC_BYTES).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ForgedReceiptError("'receipt' is not a prediction receipt") from None
