"""Manual controls for people, in their declarative form: annotations and ``spec.paused``.

``kubectl coalmine promote`` sets ``coalmine.dev/promote``; GitOps users may set it in a
manifest. The operator acts on it once and removes it (the engine names the consumed ones),
so a control never fires twice.
"""

from __future__ import annotations

from collections.abc import Mapping

from coalmine.rollout.types import CONTROL_ANNOTATIONS, Controls

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
    flags = {field: _is_set(found, key) for field, key in CONTROL_ANNOTATIONS.items()}
    return Controls(paused=paused, **flags)


def annotations_for(consumed: tuple[str, ...]) -> list[str]:
    """Annotation keys to remove for the engine's consumed controls.

    The engine may name a control by its field (``promote_full``) or by its key
    (``coalmine.dev/promote-full``); both map to the key.
    """
    keys = set(CONTROL_ANNOTATIONS.values())
    result = []
    for name in consumed:
        key = CONTROL_ANNOTATIONS.get(name, name)
        if key in keys:
            result.append(key)
    return sorted(set(result))
