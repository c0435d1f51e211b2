"""The operator's watch cache on a real API server: objects arrive, change and leave through
the watch, and the cached client then answers without reading the server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from coalmine.k8s import ObjectRef
from coalmine.k8s.cached import watched
from coalmine.k8s.client import connect
from coalmine.k8s.credentials import load
from coalmine.k8s.watchcache import UNKNOWN
from tests.coalmine.k8s.test_client_on_apiserver import deployment

pytestmark = pytest.mark.integration


def eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.05)


def test_objects_arrive_change_and_leave_through_the_watch(control_plane: Any) -> None:
    namespace = f"wc-{uuid.uuid4().hex[:8]}"
    control_plane.kubeconfig_for_service_account(namespace, "nobody")  # creates the namespace
    kubeconfig = str(control_plane.kubeconfig)
    server, other = connect(kubeconfig), connect(kubeconfig, field_manager="someone-else")
    cached, watchers = watched(server, load(kubeconfig)[0], [namespace])
    try:
        ref = ObjectRef("Deployment", namespace, "probe")
        store = next(w.store for w in watchers if w.store.kind == "Deployment")
        eventually(lambda: store.get(ref) is not UNKNOWN, "the first list")
        assert cached.get(ref) is None

        other.apply(deployment(namespace))  # someone else's write: only the watch tells us
        eventually(lambda: isinstance(store.get(ref), dict), "the ADDED event")
        other.merge_patch(ref, {"metadata": {"annotations": {"seen": "yes"}}})
        eventually(
            lambda: (cached.get(ref) or {})["metadata"].get("annotations", {}).get("seen") == "yes",
            "the MODIFIED event",
        )
        with control_plane.api_client() as api:
            path = f"/apis/apps/v1/namespaces/{namespace}/deployments/probe"
            api.delete(path).raise_for_status()
        eventually(lambda: store.get(ref) is None, "the DELETED event")
    finally:
        for watcher in watchers:
            watcher.stop()
