"""Watch-backed copies of the kinds a tick reads every time: what Kubernetes controllers call
an informer, for the operator's ``get``.

One thread per (kind, namespace) lists the objects, then follows a watch from that list's
resourceVersion (bookmarks on; a 410 Gone or any failure re-lists). Until the first list is in,
and whenever a watch has failed, the store says it does not know (``UNKNOWN``) and the caller
reads the API server instead, so a dead watch costs reads, never a stale answer that the
server would not give. Objects are kept without ``managedFields`` (half a Deployment's bytes,
and nobody reads them).

Every object of the kind in the namespace is watched, not only ours: "absent" must mean
absent, or a foreign Deployment with a child's name would look free to create (the operator's
ClusterRole has list and watch on these kinds already, for kopf).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

from kubernetes import client

from coalmine.k8s.protocol import Manifest, ObjectRef, collection_path

log = logging.getLogger(__name__)
UNKNOWN: Final = object()
"""``Store.get``'s answer when the store cannot vouch for the object (not synced)."""
WATCH_SECONDS = 300  # the server ends each watch after this; we then resume from the last rv
READ_TIMEOUT = WATCH_SECONDS + 30  # no byte for this long (bookmarks come every minute): dead


def rv_of(manifest: Manifest) -> int:
    """The object's resourceVersion as a number (see ``version_number``)."""
    return version_number(manifest.get("metadata", {}).get("resourceVersion", ""))


def version_number(version: str) -> int:
    """A resourceVersion as a number (etcd's revision: opaque by contract, but ordered on
    every API server there is); -1 for a non-number, which never replaces anything."""
    try:
        return int(version)
    except ValueError:
        return -1


class Store:
    """The objects of one kind in one namespace (or every namespace), by name."""

    def __init__(self, kind: str, namespace: str | None) -> None:
        self.kind, self.namespace = kind, namespace
        self._objects: dict[tuple[str, str], Manifest] = {}
        self._lock = threading.Lock()
        self.synced = False

    def covers(self, ref: ObjectRef) -> bool:
        return ref.kind == self.kind and self.namespace in (None, ref.namespace)

    def get(self, ref: ObjectRef) -> Manifest | object | None:
        with self._lock:
            if not self.synced:
                return UNKNOWN
            return self._objects.get((ref.namespace, ref.name))

    def replace(self, items: list[Manifest]) -> None:
        with self._lock:
            self._objects = {_key(item): _slim(item) for item in items}
            self.synced = True

    def update(self, manifest: Manifest, *, deleted: bool = False) -> None:
        """A newer version (a watch event, or the answer to our own write); an older one than
        what is kept is ignored (a write's answer can arrive before the watch's event)."""
        key = _key(manifest)
        with self._lock:
            kept = self._objects.get(key)
            if kept is not None and rv_of(kept) > rv_of(manifest):
                return
            if deleted:
                self._objects.pop(key, None)
            else:
                self._objects[key] = _slim(manifest)

    def lost(self) -> None:
        with self._lock:
            self.synced = False


class Backoff:
    """How long to wait before listing again after a failure: client-go's reflector's back-off
    (0.8 s, doubling to 30 s, each wait stretched by up to as much again at random, back to
    0.8 s once 2 minutes pass without a failure). A fixed short retry would have every store
    (three kinds times the watched namespaces) re-list an API server that is down or
    throttling every couple of seconds, in step; reads fall back to the API server meanwhile,
    so a longer wait costs those reads, never a stale answer."""

    INITIAL, CAP, RESET_AFTER = 0.8, 30.0, 120.0

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._clock, self._jitter = clock, jitter
        self._delay = 0.0
        self._last_failure: float | None = None

    def failed(self) -> float:
        """Seconds to wait after the failure that just happened."""
        now = self._clock()
        calm = self._last_failure is None or now - self._last_failure >= self.RESET_AFTER
        self._delay = self.INITIAL if calm else min(self.CAP, self._delay * 2)
        self._last_failure = now
        return self._delay * (1 + self._jitter())


class Watcher:
    """Keeps one ``Store`` current from the API server, in a daemon thread."""

    def __init__(self, api: client.ApiClient, store: Store, backoff: Backoff | None = None) -> None:
        self._api, self.store = api, store
        self._backoff = backoff or Backoff()
        self._path = collection_path(store.kind, store.namespace)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{store.kind}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                version = self._list()
                while not self._stop.is_set():
                    version = self._follow(version)
            except Exception as exc:  # any failure: say we do not know, then list again
                self.store.lost()
                wait = self._backoff.failed()
                log.warning("watch of %s lost, re-listing in %.1f s: %s", self._path, wait, exc)
                self._stop.wait(wait)

    def _list(self) -> str:
        found = json.loads(self._request([]).read())
        items = found.get("items", [])
        for item in items:  # a list's items carry no kind, a single GET's do
            item.setdefault("kind", self.store.kind)
            item.setdefault("apiVersion", found.get("apiVersion"))
        self.store.replace(items)
        return str(found["metadata"]["resourceVersion"])

    def _follow(self, version: str) -> str:
        """One watch request, to its end; returns the resourceVersion to resume from."""
        query = [
            ("watch", "1"), ("resourceVersion", version), ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(WATCH_SECONDS)),
        ]  # fmt: skip
        response = self._request(query)
        for event in _lines(response.response):
            kind, body = event.get("type"), event.get("object") or {}
            if kind == "ERROR":  # 410 Gone: our version is too old, list again
                raise RuntimeError(f"watch error: {body.get('message', body)}")
            version = body.get("metadata", {}).get("resourceVersion", version)
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                self.store.update(body, deleted=kind == "DELETED")
        return version

    def _request(self, query: list[tuple[str, str]]) -> Any:
        request = self._api.param_serialize(
            "GET", self._path, query_params=query,
            header_params={"Accept": "application/json"}, auth_settings=["BearerToken"],
        )  # fmt: skip
        response = self._api.call_api(*request, _request_timeout=(10.0, READ_TIMEOUT))
        if response.status != 200:
            raise RuntimeError(f"GET {self._path}: {response.status} {response.reason}")
        return response


def _lines(raw: Any) -> Iterator[dict[str, Any]]:
    """JSON objects of a watch stream, one a line, as chunks arrive."""
    pending = b""
    for chunk in raw.stream(64 * 1024, decode_content=True):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            if line.strip():
                yield json.loads(line)


def _key(manifest: Manifest) -> tuple[str, str]:
    meta = manifest["metadata"]
    return meta.get("namespace", ""), meta["name"]


def _slim(manifest: Manifest) -> Manifest:
    meta = manifest.get("metadata", {})
    if "managedFields" not in meta:
        return manifest
    return {**manifest, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


__all__ = ["UNKNOWN", "Backoff", "Store", "Watcher", "rv_of"]
