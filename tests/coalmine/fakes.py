"""In-memory fakes of the operator's own interfaces (KubeApi, MetricProvider) for unit tests.

They record every write in order, so tests can assert "router before Deployments".
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from coalmine.analysis import QueryResult, Sample
from coalmine.k8s import ConflictError, ObjectRef

Manifest = dict[str, Any]


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[ObjectRef, Manifest] = {}
        self.calls: list[tuple[str, str, str]] = []  # (operation, kind, name)
        self.events: list[tuple[str, str, str]] = []
        self.pod_lists: list[dict[str, str]] = []

    def put(self, manifest: Manifest) -> None:
        self.objects[ObjectRef.of(manifest)] = copy.deepcopy(manifest)

    def get(self, ref: ObjectRef) -> Manifest | None:
        found = self.objects.get(ref)
        return copy.deepcopy(found) if found is not None else None

    def apply(self, manifest: Manifest, *, force: bool = True) -> Manifest:
        """Without ``force``, an object that exists is someone else's: a conflict (the real
        server answers 409 only where fields differ; a test that needs that uses it)."""
        ref = ObjectRef.of(manifest)
        self.calls.append(("apply", ref.kind, ref.name))
        if not force and ref in self.objects:
            raise ConflictError(409, f"Apply failed with 1 conflict: {ref.kind} {ref.name!r}")
        merged = {**self.objects.get(ref, {}), **copy.deepcopy(manifest)}
        self.objects[ref] = merged
        return merged

    def create(self, manifest: Manifest) -> Manifest:
        ref = ObjectRef.of(manifest)
        self.calls.append(("create", ref.kind, ref.name))
        if ref in self.objects:
            raise ConflictError(409, f"{ref.kind} {ref.name!r} already exists")
        created = copy.deepcopy(manifest)
        created["metadata"]["resourceVersion"] = "1"
        self.objects[ref] = created
        return copy.deepcopy(created)

    def merge_patch(self, ref: ObjectRef, patch: Manifest) -> Manifest:
        """Top-level and metadata keys merged one level deep; a resourceVersion in the patch
        must match, as on the API server, and every write moves it on."""
        self.calls.append(("patch", ref.kind, ref.name))
        current = self.objects[ref]
        meta = dict(patch.get("metadata", {}))
        wanted = meta.pop("resourceVersion", None)
        version = current["metadata"].get("resourceVersion", "0")
        if wanted is not None and wanted != version:
            raise ConflictError(409, "the object has been modified")
        for key, value in patch.items():
            if key != "metadata":
                current[key] = {**current.get(key, {}), **copy.deepcopy(value)}
        current["metadata"].update(copy.deepcopy(meta))
        current["metadata"]["resourceVersion"] = str(int(version) + 1)
        return copy.deepcopy(current)

    def apply_status(
        self, ref: ObjectRef, api_version: str, status: Manifest, *, resource_version: str
    ) -> str:
        """Only onto the version read, as on the API server; every write moves it on."""
        self.calls.append(("status", ref.kind, ref.name))
        current = self.objects[ref]
        version = current["metadata"].get("resourceVersion", "")
        if version != resource_version:
            raise ConflictError(409, "the object has been modified")
        current["status"] = copy.deepcopy(status)
        current["metadata"]["resourceVersion"] = str(int(version or "0") + 1)
        return current["metadata"]["resourceVersion"]

    def scale(self, ref: ObjectRef, replicas: int) -> None:
        self.calls.append(("scale", ref.kind, ref.name))
        self.objects[ref]["spec"]["replicas"] = replicas

    def list_pods(self, namespace: str, labels: dict[str, str]) -> list[Manifest]:
        self.pod_lists.append(dict(labels))  # a read: not among the writes in ``calls``
        return [
            copy.deepcopy(body)
            for ref, body in self.objects.items()
            if ref.kind == "Pod"
            and ref.namespace == namespace
            and labels.items() <= body["metadata"].get("labels", {}).items()
        ]

    def remove_annotations(self, ref: ObjectRef, keys: list[str]) -> None:
        if keys:
            self.calls.append(("unannotate", ref.kind, ",".join(keys)))
            annotations = self.objects[ref]["metadata"].get("annotations", {})
            for key in keys:
                annotations.pop(key, None)

    def post_event(
        self, involved: Manifest, type_: Literal["Normal", "Warning"], reason: str, message: str
    ) -> None:
        self.events.append((type_, reason, message))


class FakeProvider:
    """Answers queries from a dict of exact PromQL -> result; unknown queries are empty,
    except the freshness guard's, which finds samples ``sample_age`` seconds old (fresh,
    unless a test says otherwise by answering it)."""

    def __init__(
        self, answers: dict[str, QueryResult] | None = None, sample_age: float = 1.0
    ) -> None:
        self.answers = answers or {}
        self.sample_age = sample_age
        self.queries: list[str] = []
        self.closed = False

    def query(self, promql: str) -> QueryResult:
        self.queries.append(promql)
        if promql in self.answers:
            return self.answers[promql]
        if promql.startswith("time() - max(timestamp("):
            return vector(({}, self.sample_age))
        return QueryResult()

    def close(self) -> None:
        self.closed = True


def vector(*pairs: tuple[dict[str, str], float]) -> QueryResult:
    return QueryResult(samples=tuple(Sample(labels, value) for labels, value in pairs))
