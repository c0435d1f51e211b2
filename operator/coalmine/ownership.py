"""Only our own children are touched: who owns each child, checked before a tick writes.

A child is ours when its controller ownerReference carries this ModelDeployment's uid (labels
can be copied by anyone who can create a Service; a ModelDeployment deleted and recreated
under the same name has another uid, so what the old one left is not the new one's). Before
observe, ``check_children`` reads every child the tick may write (the two Deployments and the
router's objects) through a ``ChildGuard``, which keeps what it read for the rest of the tick:
observe's reads of the same objects cost no second GET.

A child that exists and is not ours holds the tick (reconcile does not run the engine, so no
child and no route changes and traffic stays where it is) and is reported as the condition
``ChildConflict``. The guard is also what the router and act write through, so even a write
that skipped the check cannot touch a foreign object:

- a child that was ours when read is applied with ``force`` (our fields are ours to set),
  pinned to the uid that was read;
- a child that did not exist is applied without ``force``: if someone created it since, every
  field of theirs we would set to another value is a 409, and the apply changes nothing
  (a create-only apply does not exist: with a uid in it, an absent object is a 409 too);
- a child that is not ours is never written (``ForeignChildError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from coalmine.api import KIND
from coalmine.api.status import Condition, ConditionStatus
from coalmine.k8s import KubeApi, Manifest, ObjectRef
from coalmine.manifests import Variant, controller_of, owned_by
from coalmine.routing import TrafficRouter
from coalmine.subject import Subject

CONDITION = "ChildConflict"
NOT_OWNED = "ChildNotOwned"
RESOLVED = "ChildrenOwned"


class ForeignChildError(Exception):
    """A write to an object this ModelDeployment does not own was refused."""

    def __init__(self, ref: ObjectRef) -> None:
        super().__init__(
            f"refusing to write {ref.kind} {ref.name}: not owned by this ModelDeployment"
        )


class ChildGuard:
    """The ``KubeApi`` a tick's router and act use: reads once, writes only what is ours.

    Lives for one tick. Objects it does not guard (the ModelDeployment's status and
    annotations, Events) pass straight through.
    """

    def __init__(self, kube: KubeApi, uid: str) -> None:
        self._kube = kube
        self._uid = uid
        self._read: dict[ObjectRef, Manifest | None] = {}

    def get(self, ref: ObjectRef) -> Manifest | None:
        if ref not in self._read:
            self._read[ref] = self._kube.get(ref)
        return self._read[ref]

    def apply(self, manifest: Manifest, *, force: bool = True) -> Manifest:
        ref = ObjectRef.of(manifest)
        found = self.get(ref)
        if found is not None and not owned_by(found, self._uid):
            raise ForeignChildError(ref)
        self._read.pop(ref)  # written: a later read in this tick must see the new version
        if found is None:
            return self._kube.apply(manifest, force=False)
        return self._kube.apply(_same_object(manifest, found), force=force)

    def scale(self, ref: ObjectRef, replicas: int) -> None:
        found = self.get(ref)
        if found is None or not owned_by(found, self._uid):
            raise ForeignChildError(ref)
        self._read.pop(ref)
        self._kube.scale(ref, replicas)

    def create(self, manifest: Manifest) -> Manifest:
        return self._kube.create(manifest)

    def merge_patch(self, ref: ObjectRef, patch: Manifest) -> Manifest:
        self._read.pop(ref, None)
        return self._kube.merge_patch(ref, patch)

    def apply_status(
        self, ref: ObjectRef, api_version: str, status: Manifest, *, resource_version: str
    ) -> str:
        return self._kube.apply_status(ref, api_version, status, resource_version=resource_version)

    def remove_annotations(self, ref: ObjectRef, keys: list[str]) -> None:
        self._read.pop(ref, None)
        self._kube.remove_annotations(ref, keys)

    def list_pods(self, namespace: str, labels: dict[str, str]) -> list[Manifest]:
        return self._kube.list_pods(namespace, labels)

    def post_event(
        self,
        involved: Manifest,
        type_: Literal["Normal", "Warning"],
        reason: str,
        message: str,
    ) -> None:
        self._kube.post_event(involved, type_, reason, message)


def _same_object(manifest: Manifest, found: Manifest) -> Manifest:
    """``manifest`` pinned to the uid that was read: if the object was deleted and someone
    else's created in its place since, the API server refuses the apply (422, uid is immutable)
    instead of taking the new one over. Not a field anyone owns: managedFields ignore it."""
    uid = found["metadata"].get("uid")
    if uid is None:  # only a fake API leaves it out
        return manifest
    return {**manifest, "metadata": {**manifest["metadata"], "uid": uid}}


@dataclass(frozen=True)
class Foreign:
    """A child of our name that is not ours, and who controls it."""

    ref: ObjectRef
    controller: str


@dataclass(frozen=True)
class ChildrenOutcome:
    """What the tick needs to know about its children's ownership."""

    condition: Condition | None
    """``ChildConflict``: True names the foreign children; False once a conflict is gone;
    None when there never was one (no condition is added to a ModelDeployment that never
    had a conflict)."""

    @property
    def blocked(self) -> bool:
        return self.condition is not None and self.condition.status == "True"


def children_of(subject: Subject, router: TrafficRouter) -> tuple[ObjectRef, ...]:
    """Every object a tick may write for ``subject``, besides the receipt-key Secret (which
    ``coalmine.receipts`` checks the same way)."""
    deployments = tuple(subject.child(variant) for variant in Variant)
    return (*deployments, *router.children(subject.target))


def check_children(
    guard: ChildGuard,
    subject: Subject,
    router: TrafficRouter,
    previous: Sequence[Condition],
    now: datetime,
    generation: int | None,
) -> ChildrenOutcome:
    """Read every child through ``guard``; the ``ChildConflict`` condition to report."""
    foreign = []
    for ref in children_of(subject, router):
        found = guard.get(ref)
        if found is not None and not owned_by(found, subject.uid):
            foreign.append(Foreign(ref, controller_of(found)))
    had_conflict = any(c.type == CONDITION and c.status == "True" for c in previous)
    if foreign:
        message = conflict_message(subject, foreign)
        return ChildrenOutcome(_condition("True", NOT_OWNED, message, now, generation))
    if had_conflict:
        message = "every child of this ModelDeployment is owned by it"
        return ChildrenOutcome(_condition("False", RESOLVED, message, now, generation))
    return ChildrenOutcome(None)


def conflict_message(subject: Subject, foreign: Sequence[Foreign]) -> str:
    """``Service iris exists and is controlled by Deployment web (uid …), not by this
    ModelDeployment: ...``, naming each foreign child."""
    parts = []
    for child in foreign:
        owner = child.controller
        if owner.startswith(f"{KIND} {subject.ref.name} "):
            owner += ", an earlier ModelDeployment of this name"
        parts.append(f"{child.ref.kind} {child.ref.name} (controlled by {owner})")
    one = len(parts) == 1
    return (
        f"{'; '.join(parts)} {'exists' if one else 'exist'} and {'is' if one else 'are'} not "
        f"owned by this ModelDeployment: the operator leaves {'it' if one else 'them'} alone "
        "and changes no pods and no traffic until renamed or deleted (if a ModelDeployment of "
        "this name was just deleted, the garbage collector removes its children soon)"
    )


def _condition(
    status: ConditionStatus, reason: str, message: str, now: datetime, generation: int | None
) -> Condition:
    return Condition(
        type=CONDITION, status=status, reason=reason, message=message[:1000],
        last_transition_time=now, observed_generation=generation,
    )  # fmt: skip


__all__ = [
    "CONDITION",
    "ChildGuard",
    "ChildrenOutcome",
    "ForeignChildError",
    "check_children",
    "children_of",
]
