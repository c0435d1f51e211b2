"""The receipt keys for one tick: read the Secret, rotate and retire keys, write it back.

Runs before observe and act, so the Secret exists before any Deployment that mounts it. The
Secret is read, then written only when its keys change: created (never overwriting one that
exists) or patched at the version that was read, so a tick can never replace keys it did not
see with new random ones. A Secret of that name that this ModelDeployment does not own is left
alone, and the tick stops there: no pod is started that would mount someone else's keys.
The key rules themselves are pure (``coalmine.manifests.receiptkeys``).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from coalmine.api import ModelDeployment
from coalmine.api.status import Condition, ConditionStatus
from coalmine.controls import ANNOTATION_ROTATE_KEYS, rotate_keys_requested
from coalmine.k8s import KubeApi, Manifest, ObjectRef
from coalmine.manifests import owned_by
from coalmine.manifests.receiptkeys import (
    KEY_BYTES,
    KEYS_FILE,
    KeyPolicy,
    ReceiptKey,
    RingChange,
    keys_in,
    next_change,
    next_keys,
    receipt_keys_secret,
    render_keys,
    secret_name,
    signing_key,
)
from coalmine.settings import OperatorSettings
from coalmine.subject import Subject

CONDITION = "ReceiptKeys"
CONFLICT = "ReceiptKeysConflict"
INVALID = "ReceiptKeysInvalid"


@dataclass(frozen=True)
class KeysOutcome:
    """What the tick needs to know about the keys."""

    condition: Condition
    """``ReceiptKeys``: True when the Secret is ours and current; False says why not."""
    next_change: datetime | None = None
    """When a rotation or retirement is next due (a tick should run then)."""
    secret: Manifest | None = None
    """The Secret as this tick read it, for its other keys (the mirror file): the keys' own
    patch leaves those alone, so observe need not read it again."""

    @property
    def blocked(self) -> bool:
        """No usable keys: the tick must not start or change any pod."""
        return self.condition.status != "True"


def ensure_receipt_keys(
    kube: KubeApi,
    subject: Subject,
    md: ModelDeployment,
    settings: OperatorSettings,
    now: datetime,
    random_bytes: Callable[[], bytes] = lambda: secrets.token_bytes(KEY_BYTES),
) -> KeysOutcome:
    """Make the Secret hold the keys the rules want now; the condition to report."""
    name = secret_name(subject.owner)
    ref = ObjectRef("Secret", subject.ref.namespace, name)
    found = kube.get(ref)
    generation = md.metadata.generation
    try:
        keys = _stored_keys(found, subject.uid, name)
    except _UnusableKeysError as unusable:
        return _blocked(unusable.reason, unusable.message, now, generation)
    policy = _policy(settings, md)
    rotate = rotate_keys_requested(md.metadata.annotations)
    change = next_keys(keys, now, policy, rotate=rotate, random_bytes=random_bytes)
    if found is None:
        kube.create(receipt_keys_secret(subject.owner, change.keys))
    elif change.keys != keys:  # only the version that was read: 409 if it changed since
        kube.merge_patch(ref, _keys_patch(found, change.keys))
    _announce(kube, subject, name, created=found is None, change=change, rotate=rotate)
    if rotate:  # after the write: a crash before it leaves the request for the next tick
        kube.remove_annotations(subject.ref, [ANNOTATION_ROTATE_KEYS])
    ready = _condition("True", "KeysReady", _ready_message(name, change.keys, now), now, generation)
    return KeysOutcome(
        condition=ready, next_change=next_change(change.keys, now, policy), secret=found
    )


def _policy(settings: OperatorSettings, md: ModelDeployment) -> KeyPolicy:
    return KeyPolicy(
        rotation=settings.receipt_key_rotation,
        activation_delay=settings.receipt_key_activation_delay,
        horizon=md.spec.feedback.horizon,
    )


class _UnusableKeysError(Exception):
    """The Secret exists but its keys cannot be used (not ours, or unreadable)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


def _stored_keys(found: Manifest | None, uid: str, name: str) -> tuple[ReceiptKey, ...]:
    """The keys the Secret holds (none when it does not exist)."""
    if found is None:
        return ()
    if not owned_by(found, uid):
        raise _UnusableKeysError(CONFLICT, _conflict_message(name))
    try:
        return keys_in(found)
    except ValueError as exc:
        raise _UnusableKeysError(INVALID, _invalid_message(name, exc)) from exc


def _keys_patch(found: Manifest, keys: tuple[ReceiptKey, ...]) -> Manifest:
    text = render_keys(keys)
    version = found["metadata"]["resourceVersion"]
    return {
        "metadata": {"resourceVersion": version},  # a precondition, not a change
        "data": {KEYS_FILE: base64.b64encode(text.encode()).decode()},
    }


def _announce(
    kube: KubeApi, subject: Subject, name: str, *, created: bool, change: RingChange, rotate: bool
) -> None:
    involved = subject.involved_object()
    added = change.added
    if created and added is not None:
        message = f"created Secret {name} with receipt key {added.id}, active now"
        kube.post_event(involved, "Normal", "ReceiptKeysCreated", message)
    elif added is not None:
        why = "requested by " + ANNOTATION_ROTATE_KEYS if rotate else "scheduled rotation"
        message = (
            f"added receipt key {added.id} to Secret {name} ({why}); pods sign with it from "
            f"{_rfc3339(added.active_from)}, once every pod has it"
        )
        kube.post_event(involved, "Normal", "ReceiptKeyAdded", message)
    for key_id in change.retired:
        message = (
            f"dropped receipt key {key_id} from Secret {name}: its successor has signed for "
            "longer than the feedback horizon, so every receipt it signed has expired"
        )
        kube.post_event(involved, "Normal", "ReceiptKeyRetired", message)


def _blocked(reason: str, message: str, now: datetime, generation: int | None) -> KeysOutcome:
    return KeysOutcome(condition=_condition("False", reason, message, now, generation))


def _condition(
    status: ConditionStatus, reason: str, message: str, now: datetime, generation: int | None
) -> Condition:
    return Condition(
        type=CONDITION, status=status, reason=reason, message=message,
        last_transition_time=now, observed_generation=generation,
    )  # fmt: skip


def _conflict_message(name: str) -> str:
    return (
        f"Secret {name} exists and is not owned by this ModelDeployment: the operator leaves "
        "it alone and starts or changes no pods until it is gone (rename or delete it; if a "
        "ModelDeployment of this name was just deleted, the garbage collector removes it soon)"
    )


def _invalid_message(name: str, error: ValueError) -> str:
    return (
        f"Secret {name}: {error}. The operator does not overwrite it and changes no pods; "
        "delete it to get new keys (labels for receipts signed with the old keys are then "
        "refused)"
    )


def _ready_message(name: str, keys: tuple[ReceiptKey, ...], now: datetime) -> str:
    signing = signing_key(keys, now)
    count = f"{len(keys)} key{'s' if len(keys) != 1 else ''}"
    text = f"Secret {name} holds {count}; signing with {signing.id if signing else 'none yet'}"
    waiting = [key for key in keys if key.active_from > now]
    if waiting:
        text += f", {waiting[-1].id} from {_rfc3339(waiting[-1].active_from)}"
    return text


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["CONDITION", "KeysOutcome", "ensure_receipt_keys"]
