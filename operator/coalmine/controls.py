"""Manual controls for people, in their declarative form: annotations and ``spec.paused``.

``kubectl coalmine promote`` sets ``coalmine.dev/promote``; GitOps users may set it in a
manifest. The operator acts on it once and removes it, so a control never fires twice.

This module is the one home of the annotation keys: the pure engine sees only ``Controls``
flags (and returns the ones it consumed), and the kubectl plugin imports the keys from here.
"""

from __future__ import annotations

from collections.abc import Mapping

from coalmine.rollout.types import Controls

ANNOTATION_PROMOTE = "coalmine.dev/promote"
ANNOTATION_PROMOTE_FULL = "coalmine.dev/promote-full"
ANNOTATION_ABORT = "coalmine.dev/abort"
ANNOTATION_RETRY = "coalmine.dev/retry"
ANNOTATION_ROTATE_KEYS = "coalmine.dev/rotate-keys"
"""Add a new receipt key now (``kubectl coalmine rotate-keys``). Not a ``Controls`` flag: the
receipt keys are kept outside the rollout engine (``coalmine.receipts``), which consumes it."""

ANNOTATIONS: dict[str, str] = {
    "promote": ANNOTATION_PROMOTE,
    "promote_full": ANNOTATION_PROMOTE_FULL,
    "abort": ANNOTATION_ABORT,
    "retry": ANNOTATION_RETRY,
}
"""``Controls`` field -> the annotation the operator reads it from (and removes once consumed).
``paused`` has none: it is ``spec.paused``."""

_FALSE_WORDS = frozenset({"false", "0", "no", "off"})


def _is_set(annotations: Mapping[str, str], key: str) -> bool:
    # Presence is the signal (any value, even empty); an explicit "false" lets a manifest keep
    # the key around without triggering the control.
    if key not in annotations:
        return False
    return annotations[key].strip().lower() not in _FALSE_WORDS


def parse_controls(annotations: Mapping[str, str] | None, paused: bool) -> Controls:
    """The controls in effect for one tick."""
    found = annotations or {}
    flags = {field: _is_set(found, key) for field, key in ANNOTATIONS.items()}
    return Controls(paused=paused, **flags)


def rotate_keys_requested(annotations: Mapping[str, str] | None) -> bool:
    """Whether a person asked for a new receipt key."""
    return _is_set(annotations or {}, ANNOTATION_ROTATE_KEYS)


def annotations_for(consumed: Controls) -> list[str]:
    """Annotation keys to remove for the controls the engine consumed (sorted, so the
    patch is the same whatever order the flags are declared in)."""
    return sorted(key for name, key in ANNOTATIONS.items() if getattr(consumed, name))
