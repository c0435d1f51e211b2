"""What the operator and ``kubectl coalmine`` need from the API server, as protocols.

No client import here: the real implementation is ``coalmine.k8s.client.KubernetesApi``, and
unit tests fake these protocols. Every failure is one of ``coalmine.k8s.errors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from coalmine.manifests.labels import Manifest as Manifest

# kind -> (URL prefix, plural). Only the kinds we touch: a new child kind is one
# line here, and an unknown kind is a programming error caught in unit tests.
_KINDS: dict[str, tuple[str, str]] = {
    "Deployment": ("/apis/apps/v1", "deployments"),
    "Service": ("/api/v1", "services"),
    "HTTPRoute": ("/apis/gateway.networking.k8s.io/v1", "httproutes"),
    "ModelDeployment": ("/apis/coalmine.dev/v1alpha1", "modeldeployments"),
    "Event": ("/api/v1", "events"),
    "Secret": ("/api/v1", "secrets"),
    "Lease": ("/apis/coordination.k8s.io/v1", "leases"),
    "Pod": ("/api/v1", "pods"),
}


def collection_path(kind: str, namespace: str | None) -> str:
    """The URL of a kind's objects in one namespace, or in every namespace (None)."""
    prefix, plural = _KINDS[kind]
    return (
        f"{prefix}/{plural}" if namespace is None else f"{prefix}/namespaces/{namespace}/{plural}"
    )


@dataclass(frozen=True)
class ObjectRef:
    """A namespaced object by kind and name."""

    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, manifest: Manifest) -> ObjectRef:
        meta = manifest["metadata"]
        return cls(manifest["kind"], meta["namespace"], meta["name"])

    def collection_path(self) -> str:
        return collection_path(self.kind, self.namespace)

    def path(self, subresource: str | None = None) -> str:
        base = f"{self.collection_path()}/{self.name}"
        return f"{base}/{subresource}" if subresource else base


class KubeApi(Protocol):
    """The operations the operator performs; every write is idempotent."""

    def get(self, ref: ObjectRef) -> Manifest | None:
        """The object, or None when it does not exist."""
        ...

    def apply(self, manifest: Manifest, *, force: bool = True) -> Manifest:
        """Server-side apply under the operator's field manager (creates if missing). With
        ``force`` it takes over fields another manager set (for children known to be ours);
        without, such a field is a ``ConflictError``."""
        ...

    def create(self, manifest: Manifest) -> Manifest:
        """Create the object; ``ConflictError`` if one of that name exists (never overwrites:
        for objects whose content must survive, such as receipt keys)."""
        ...

    def merge_patch(self, ref: ObjectRef, patch: Manifest) -> Manifest:
        """JSON merge patch; with ``metadata.resourceVersion`` in the patch it applies only to
        that version of the object (``ConflictError`` if it changed since it was read)."""
        ...

    def apply_status(
        self, ref: ObjectRef, api_version: str, status: Manifest, *, resource_version: str
    ) -> str:
        """Server-side apply of ``status`` on the status subresource (one write per tick),
        only onto ``resource_version`` of the object (``ConflictError`` if it changed since
        the tick read it); returns the resourceVersion written."""
        ...

    def scale(self, ref: ObjectRef, replicas: int) -> None:
        """Set a Deployment's replicas through the scale subresource, template untouched."""
        ...

    def remove_annotations(self, ref: ObjectRef, keys: list[str]) -> None:
        """Delete annotations (consumed controls)."""
        ...

    def post_event(
        self,
        involved: Manifest,
        type_: Literal["Normal", "Warning"],
        reason: str,
        message: str,
    ) -> None:
        """Record a core/v1 Event on ``involved`` (apiVersion, kind, name, namespace, uid)."""
        ...

    def list_pods(self, namespace: str, labels: dict[str, str]) -> list[Manifest]:
        """The pods in ``namespace`` carrying every one of ``labels`` (one page: a
        Deployment's pods)."""
        ...


class UserApi(Protocol):
    """What ``kubectl coalmine`` does with a person's credentials: read, patch, list Events."""

    def read(self, ref: ObjectRef) -> Manifest:
        """The object; ``NotFoundError`` when it does not exist (``KindNotServedError`` when
        the server does not serve its kind)."""
        ...

    def merge_patch(self, ref: ObjectRef, patch: Manifest) -> Manifest:
        """Apply a JSON merge patch (RFC 7386: null deletes a key); return the result."""
        ...

    def list_events(self, ref: ObjectRef) -> list[Manifest]:
        """The Events in the object's namespace whose involvedObject is this kind and name."""
        ...
