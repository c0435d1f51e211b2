"""``KubeApi`` with ``get`` answered from watches (``coalmine.k8s.watchcache``) for the kinds a
tick reads every time: the ModelDeployment, its Deployments and its Services. A steady
ModelDeployment then costs no API read per tick (docs/benchmarks.md, B9).

Reads stay as fresh as the tick needs:

- our own writes: the object a write returns replaces the cached one (when newer), and a
  write whose answer is not the object (status, scale) marks it, so the next ``get`` reads
  the API server once;
- everything else arrives by the watch within milliseconds, the way kopf's own events do;
- a store that is not synced (starting, or its watch failed) answers nothing and the read
  goes to the API server.

Writes go to the wrapped client, with one exception: an ``apply`` of a cached kind that would
change nothing is not sent. Server-side apply of an unchanged manifest changes nothing on the
server but is still a request (a canary's tick re-applies its two Deployments and two
Services). It is skipped only when both hold:

- the manifest equals the one this client last applied to that object, so no field of ours
  was dropped since (an apply without a field removes it: only the server can do that);
- the object the store can vouch for still holds every value of the manifest (nobody changed a
  field of ours since: a ``kubectl edit``, an HPA), list by list and key by key. The server's
  defaults (``protocol: TCP``) are extra keys and do not matter; a value the server rewrites
  (a quantity ``0.5`` read back as ``500m``) never matches, and is simply applied every time.
  Checked once per version of the object: the same resourceVersion is the same object, so a
  canary's tick compares its four unchanged children in microseconds.

Secrets the operator may get by name but not list or watch (least privilege). A Secret of a
ModelDeployment's (its receipt keys and mirror file, read by every tick) is remembered for
``SECRET_MEMO_SECONDS`` after this client read or wrote it, so a canary ticking every few
seconds reads it about once a minute instead of on every tick. Our writes' answers replace
it, a failed write forgets it (a 409 means someone else changed it: read again), and a
Secret nobody of ours owns is never remembered (a tick blocked on it must see it go).
A Secret changed or deleted by someone else is seen within the memo's minute; one that is
ours keeps serving the pods that mount it meanwhile.

Every other kind (Pods; Events) and every other write go straight to the wrapped client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Literal

from kubernetes import client

from coalmine.k8s.protocol import KubeApi, Manifest, ObjectRef
from coalmine.k8s.watchcache import UNKNOWN, Store, Watcher, rv_of, version_number

CACHED_KINDS = ("ModelDeployment", "Deployment", "Service")
SECRET_MEMO_SECONDS = 60.0
"""How long a ModelDeployment's Secret read or written by us is reused (a Healthy object ticks
every 300 s, so only canaries, which tick every analysis interval, reuse it)."""
PRUNE_SECONDS = 60.0
"""How often what this client keeps of objects is checked for objects that are gone."""


class CachedKubeApi:
    """A ``KubeApi`` whose ``get`` comes from watch-backed stores when they can vouch for it."""

    def __init__(
        self,
        inner: KubeApi,
        stores: Iterable[Store],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner
        self._stores = list(stores)
        self._dirty: set[ObjectRef] = set()
        self._seen: dict[ObjectRef, int] = {}
        # What we last applied to each object, and the version of that object last found to
        # hold it (-1: none yet).
        self._applied: dict[ObjectRef, tuple[Manifest, int]] = {}
        self._secrets: dict[ObjectRef, tuple[float, Manifest]] = {}  # when, what
        self._clock = clock
        self._lock = threading.Lock()
        self._pruned_at = clock()
        self._absent: set[ObjectRef] = set()  # gone from their store at the last pruning

    def saw(self, manifest: Manifest) -> None:
        """kopf's event for ``manifest`` came first: until the store holds this version (or a
        newer), a ``get`` reads the API server (the tick the event starts must see it)."""
        try:
            ref = ObjectRef.of(manifest)
        except KeyError:
            return
        self._await_version(ref, rv_of(manifest))

    def _await_version(self, ref: ObjectRef, version: int) -> None:
        with self._lock:
            self._seen[ref] = max(self._seen.get(ref, -1), version)

    def _store_for(self, ref: ObjectRef) -> Store | None:
        return next((s for s in self._stores if s.covers(ref)), None)

    @staticmethod
    def _trusted(store: Store | None, ref: ObjectRef, dirty: bool, seen: int) -> object:
        """The store's answer for ``ref``, or ``UNKNOWN`` when a read must go to the server:
        no store, a write of ours the store may not have, or a version it has not reached."""
        if store is None or dirty:
            return UNKNOWN
        cached = store.get(ref)
        if cached is not UNKNOWN and seen >= 0 and _older(cached, seen):
            return UNKNOWN  # the watch is behind the event that woke this tick
        return cached

    def _prune_now_and_then(self) -> None:
        """Forget what is kept of objects that are gone (their digests, pending versions and
        forced reads; expired Secrets), at most every ``PRUNE_SECONDS``: a ModelDeployment
        deleted leaves four children and a Secret, and an operator that runs for months sees
        many. An object counts as gone when its synced store has lacked it at two prunings in a
        row (one just created is in its store within milliseconds). Forgetting costs at most
        one request the cache would have saved, never a stale answer."""
        now = self._clock()
        with self._lock:
            if now - self._pruned_at < PRUNE_SECONDS:
                return
            self._pruned_at = now
            self._secrets = {
                ref: kept
                for ref, kept in self._secrets.items()
                if now - kept[0] < SECRET_MEMO_SECONDS
            }
            kept_refs = {*self._seen, *self._applied, *self._dirty}
        absent = {ref for ref in kept_refs if self._gone(ref)}
        with self._lock:
            for ref in absent & self._absent:
                self._seen.pop(ref, None)
                self._applied.pop(ref, None)
                self._dirty.discard(ref)
            self._absent = absent - self._absent

    def _gone(self, ref: ObjectRef) -> bool:
        store = self._store_for(ref)
        return store is not None and store.get(ref) is None

    def get(self, ref: ObjectRef) -> Manifest | None:
        self._prune_now_and_then()
        if ref.kind == "Secret":
            return self._secret(ref)
        store = self._store_for(ref)
        with self._lock:
            dirty = ref in self._dirty
            self._dirty.discard(ref)
            seen = self._seen.pop(ref, -1)
        cached = self._trusted(store, ref, dirty, seen)
        if cached is not UNKNOWN:  # a copy: a caller changing it must not change the store
            return copied(cached) if isinstance(cached, dict) else None
        found = self._inner.get(ref)
        if store is not None and found is not None:
            store.update(found)
        return found

    def _secret(self, ref: ObjectRef) -> Manifest | None:
        with self._lock:
            kept = self._secrets.get(ref)
        if kept is not None and self._still_valid(*kept):
            return copied(kept[1])
        found = self._inner.get(ref)
        self._remember(ref, found)
        return found

    def _still_valid(self, kept_at: float, secret: Manifest) -> bool:
        """Young enough, and its ModelDeployment is still the one that controls it: one
        deleted and made again under the same name has a new uid, and must not be shown
        its predecessor's Secret (the garbage collector is removing that one)."""
        if self._clock() - kept_at >= SECRET_MEMO_SECONDS:
            return False
        owner = _controller(secret)
        meta = secret["metadata"]
        parent = ObjectRef("ModelDeployment", meta.get("namespace", ""), owner.get("name", ""))
        live = self._vouched(parent)
        return live is not None and live["metadata"].get("uid") == owner.get("uid")

    def _remember(self, ref: ObjectRef, secret: Manifest | None) -> None:
        """Keep ``secret`` (read or written just now) if it is a ModelDeployment's; forget
        ``ref`` otherwise."""
        with self._lock:
            if secret is not None and _controller(secret):
                self._secrets[ref] = (self._clock(), copied(secret))
            else:
                self._secrets.pop(ref, None)

    def _wrote(self, ref: ObjectRef, answer: Manifest | None = None) -> None:
        if ref.kind == "Secret":
            self._remember(ref, answer if _has_version(answer) else None)
            return
        store = self._store_for(ref)
        if store is None:
            return
        if answer is not None and answer.get("metadata", {}).get("resourceVersion"):
            store.update(answer)
        else:
            with self._lock:
                self._dirty.add(ref)

    def apply(self, manifest: Manifest, *, force: bool = True) -> Manifest:
        ref = ObjectRef.of(manifest)
        live = self._vouched(ref)
        if live is not None and self._still_applied(ref, manifest, live):
            return copied(live)
        answer = self._inner.apply(manifest, force=force)
        with self._lock:  # a copy: the caller's manifest is theirs to change
            self._applied[ref] = (copied(manifest), -1)
        self._wrote(ref, answer)
        return answer

    def _still_applied(self, ref: ObjectRef, manifest: Manifest, live: Manifest) -> bool:
        """``manifest`` is what we last applied to ``ref`` and ``live`` still holds all of it."""
        with self._lock:
            last = self._applied.get(ref)
        if last is None or last[0] != manifest:
            return False
        version = rv_of(live)
        if version >= 0 and version == last[1]:
            return True  # this very version held it already
        if not holds(live, manifest):
            return False
        with self._lock:
            if self._applied.get(ref) is last:
                self._applied[ref] = (last[0], version)
        return True

    def _vouched(self, ref: ObjectRef) -> Manifest | None:
        """The store's object when ``get`` would trust it, without using up a pending forced
        read; None when absent or not vouched for."""
        with self._lock:
            dirty, seen = ref in self._dirty, self._seen.get(ref, -1)
        cached = self._trusted(self._store_for(ref), ref, dirty, seen)
        return cached if isinstance(cached, dict) else None

    def create(self, manifest: Manifest) -> Manifest:
        ref = ObjectRef.of(manifest)
        try:
            answer = self._inner.create(manifest)
        except BaseException:  # it exists already (409), or unknown: read it next time
            self._wrote(ref)
            raise
        self._wrote(ref, answer)
        return answer

    def merge_patch(self, ref: ObjectRef, patch: Manifest) -> Manifest:
        try:
            answer = self._inner.merge_patch(ref, patch)
        except BaseException:  # a stale precondition (409), or unknown: read it next time
            self._wrote(ref)
            raise
        self._wrote(ref, answer)
        return answer

    def apply_status(
        self, ref: ObjectRef, api_version: str, status: Manifest, *, resource_version: str
    ) -> str:
        try:
            written = self._inner.apply_status(
                ref, api_version, status, resource_version=resource_version
            )
        except BaseException:  # refused as stale (409), or unknown: the next read is the server's
            self._wrote(ref)
            raise
        self._expect(ref, written)
        return written

    def _expect(self, ref: ObjectRef, version: str) -> None:
        """Our write made ``version``: the store answers again once its watch has brought it
        (milliseconds; a tick comes seconds later), the API server until then."""
        number = version_number(version)
        if number < 0:
            self._wrote(ref)
        else:
            self._await_version(ref, number)

    def scale(self, ref: ObjectRef, replicas: int) -> None:
        self._inner.scale(ref, replicas)
        self._wrote(ref)

    def remove_annotations(self, ref: ObjectRef, keys: list[str]) -> None:
        self._inner.remove_annotations(ref, keys)
        if keys:
            self._wrote(ref)

    def post_event(
        self, involved: Manifest, type_: Literal["Normal", "Warning"], reason: str, message: str
    ) -> None:
        self._inner.post_event(involved, type_, reason, message)

    def list_pods(self, namespace: str, labels: dict[str, str]) -> list[Manifest]:
        return self._inner.list_pods(namespace, labels)


def copied(document: Manifest) -> Manifest:
    """A copy of a JSON document (dicts, lists and immutable scalars, as a watch decodes
    them): what ``copy.deepcopy`` makes of it, in a fifth of the CPU (no memo, no copy
    protocol). Every cached read pays one: with deepcopy, 6% of the operator's CPU samples
    with 30 canaries analysing (py-spy --gil, docs/benchmarks.md B9)."""
    return {key: _copy_value(value) for key, value in document.items()}


def _copy_value(value: object) -> object:
    if isinstance(value, dict):
        return {key: _copy_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_value(item) for item in value]
    return value


def _has_version(answer: Manifest | None) -> bool:
    return bool(answer and answer.get("metadata", {}).get("resourceVersion"))


def _controller(secret: Manifest) -> Manifest:
    """The ModelDeployment that controls ``secret`` ({} when none does)."""
    owners = secret.get("metadata", {}).get("ownerReferences") or []
    found: Manifest = next(
        (o for o in owners
         if o.get("controller") and o.get("kind") == "ModelDeployment"
         and str(o.get("apiVersion", "")).startswith("coalmine.dev/")),
        {},
    )  # fmt: skip
    return found


def _older(cached: object, version: int) -> bool:
    return not isinstance(cached, dict) or rv_of(cached) < version


def holds(live: object, desired: object) -> bool:
    """Every value of ``desired`` is in ``live``: mappings key by key (``live`` may have more
    keys: defaults, status), lists element by element and of the same length, the rest equal.
    A zero value (``readOnly: false``) may be missing: the server stores a non-pointer field's
    zero as nothing (Go's ``omitempty``), so the apply would leave the object as it is."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            holds(live[key], value) if key in live else _zero(value)
            for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(holds(have, want) for have, want in zip(live, desired, strict=True))
        )
    return live == desired


def _zero(value: object) -> bool:
    return value is None or value is False or value in (0, "", [], {})


def watched(
    inner: KubeApi, api: client.ApiClient, namespaces: list[str] | None
) -> tuple[CachedKubeApi, list[Watcher]]:
    """``inner`` behind stores of ``CACHED_KINDS`` in ``namespaces`` (None: every namespace),
    with their watchers started."""
    scopes: list[str | None] = list(namespaces) if namespaces else [None]
    stores = [Store(kind, namespace) for kind in CACHED_KINDS for namespace in scopes]
    watchers = [Watcher(api, store) for store in stores]
    for watcher in watchers:
        watcher.start()
    return CachedKubeApi(inner, stores), watchers


__all__ = ["CACHED_KINDS", "CachedKubeApi", "holds", "watched"]
