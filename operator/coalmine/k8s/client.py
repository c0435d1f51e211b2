"""``KubeApi`` and ``UserApi`` over the official ``kubernetes`` client: raw paths,
server-side apply, and every failure as a ``coalmine.k8s.errors`` type.

Raw paths (``call_api``) instead of the generated typed APIs because server-side apply of
plain dicts, the scale subresource of any kind and custom resources all look the same that
way, and the generated models would only be converted back to dicts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from coalmine.k8s.credentials import load
from coalmine.k8s.errors import ApiError, ConflictError, NotFoundError, UnreachableError, error_for
from coalmine.k8s.protocol import Manifest, ObjectRef, collection_path
from coalmine.settings import FIELD_MANAGER

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON = "application/json"
CONFLICT_RETRIES = 3
REQUEST_TIMEOUT = 15.0  # seconds; a hung API call must not stall a tick forever

# One number is a total per request; a pair is (connect, read), as urllib3 takes them.
Timeout = float | tuple[float, float]
Query = list[tuple[str, str]]


def connect(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    prefer_in_cluster: bool = False,
    field_manager: str = FIELD_MANAGER,
    timeout: Timeout = REQUEST_TIMEOUT,
) -> KubernetesApi:
    """A client for the cluster ``coalmine.k8s.credentials.load`` chooses (see there), with
    the namespace those credentials default to as its ``namespace``."""
    api_client, namespace = load(kubeconfig, context, prefer_in_cluster=prefer_in_cluster)
    return KubernetesApi(api_client, namespace, field_manager=field_manager, timeout=timeout)


class KubernetesApi:
    """The real ``KubeApi`` (for the operator) and ``UserApi`` (for ``kubectl coalmine``).

    ``field_manager`` names the writer in managedFields and in the Events it posts.
    """

    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str = "default",
        *,
        field_manager: str = FIELD_MANAGER,
        timeout: Timeout = REQUEST_TIMEOUT,
    ) -> None:
        self.namespace = namespace
        self._api = api_client
        self._field_manager = field_manager
        self._timeout = timeout

    def get(self, ref: ObjectRef) -> Manifest | None:
        try:
            return self.read(ref)
        except NotFoundError:
            return None

    def read(self, ref: ObjectRef) -> Manifest:
        return self._call("GET", ref.path())

    def apply(self, manifest: Manifest, *, force: bool = True) -> Manifest:
        # force=true on a child the caller has checked is ours: the operator is the only
        # writer of the fields it applies, and without force a kubectl edit of one of them
        # would wedge every future tick. force=false where the object was absent when read:
        # if someone created it since, their fields conflict (409) instead of being taken.
        ref = ObjectRef.of(manifest)
        query = [("force", "true")] if force else []
        if not force:  # a 409 here is someone else's object: re-sending cannot change that
            return self._once("PATCH", ref.path(), manifest, APPLY, query)
        return self._call("PATCH", ref.path(), manifest, APPLY, query)

    def create(self, manifest: Manifest) -> Manifest:
        # Once, without the conflict retries: a 409 here means the object exists, and
        # re-sending cannot change that.
        ref = ObjectRef.of(manifest)
        return self._once("POST", ref.collection_path(), manifest, JSON, [])

    def apply_status(
        self, ref: ObjectRef, api_version: str, status: Manifest, *, resource_version: str
    ) -> str:
        # The resourceVersion the tick read is a precondition of the apply (the server answers
        # 409 if the object moved on): a tick that decided from a stale status cannot land
        # its decision over a newer one. Sent once: only a fresh read can make it right.
        body = {
            "apiVersion": api_version,
            "kind": ref.kind,
            "metadata": {
                "name": ref.name,
                "namespace": ref.namespace,
                "resourceVersion": resource_version,
            },
            "status": status,
        }
        written = self._once("PATCH", ref.path("status"), body, APPLY, [("force", "true")])
        return str(written.get("metadata", {}).get("resourceVersion", ""))

    def replace(self, manifest: Manifest) -> Manifest:
        # PUT with the manifest's metadata.resourceVersion: an optimistic lock (409 if the
        # object changed since it was read), once, for the same reason as above.
        return self._once("PUT", ObjectRef.of(manifest).path(), manifest, JSON, [])

    def scale(self, ref: ObjectRef, replicas: int) -> None:
        self._call("PATCH", ref.path("scale"), {"spec": {"replicas": replicas}}, MERGE)

    def merge_patch(self, ref: ObjectRef, patch: Manifest) -> Manifest:
        if "resourceVersion" in patch.get("metadata", {}):
            # A precondition: after a 409 the object has moved on, and only a fresh read
            # (the next tick) can make a correct patch.
            return self._once("PATCH", ref.path(), patch, MERGE, [])
        return self._call("PATCH", ref.path(), patch, MERGE)

    def remove_annotations(self, ref: ObjectRef, keys: list[str]) -> None:
        if keys:
            self.merge_patch(ref, {"metadata": {"annotations": dict.fromkeys(keys)}})

    def list_events(self, ref: ObjectRef) -> list[Manifest]:
        selector = f"involvedObject.kind={ref.kind},involvedObject.name={ref.name}"
        events = ObjectRef("Event", ref.namespace, "")
        found = self._call("GET", events.collection_path(), query=[("fieldSelector", selector)])
        items: list[Manifest] = found.get("items", [])
        return items

    def list_objects(self, kind: str, namespace: str | None) -> list[Manifest]:
        """Every object of ``kind`` in ``namespace``, or in all namespaces when None (one
        page: the dashboard lists ModelDeployments, which a cluster has tens of, not
        thousands)."""
        found = self._call("GET", collection_path(kind, namespace))
        items: list[Manifest] = found.get("items", [])
        return items

    def list_pods(self, namespace: str, labels: dict[str, str]) -> list[Manifest]:
        selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        path = collection_path("Pod", namespace)
        found = self._call("GET", path, query=[("labelSelector", selector)])
        items: list[Manifest] = found.get("items", [])
        return items

    def post_event(
        self,
        involved: Manifest,
        type_: Literal["Normal", "Warning"],
        reason: str,
        message: str,
    ) -> None:
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        component = self._field_manager
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            # generateName: a retried post is another event, never a 409 on a reused name.
            "metadata": {
                "generateName": f"{involved['name']}.",
                "namespace": involved["namespace"],
            },
            "involvedObject": involved,
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        ref = ObjectRef("Event", involved["namespace"], "")
        self._call("POST", ref.collection_path(), event)

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = JSON,
        query: Query | None = None,
    ) -> Manifest:
        # A 409 on apply or patch means someone wrote in between; every call here is a full
        # desired state or a key deletion, so re-sending it is correct.
        for attempt in range(CONFLICT_RETRIES):
            try:
                return self._once(method, path, body, content_type, query or [])
            except ConflictError:
                if attempt == CONFLICT_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _once(self, method: str, path: str, body: Any, content_type: str, query: Query) -> Manifest:
        if method in ("PATCH", "POST", "PUT"):
            query = [("fieldManager", self._field_manager), *query]
        # The client JSON-encodes dict bodies for JSON types; apply bodies go as text.
        payload = json.dumps(body) if content_type == APPLY else body
        try:
            request = self._api.param_serialize(
                method, path, query_params=query,
                header_params={"Content-Type": content_type, "Accept": JSON},
                body=payload, auth_settings=["BearerToken"],
            )  # fmt: skip
            response = self._api.call_api(*request, _request_timeout=self._timeout)
            raw = response.read() or b"{}"  # type: ignore[no-untyped-call]
        except ApiException as exc:
            raise _translate(int(exc.status or 0), exc.body, str(exc.reason or exc.status)) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise UnreachableError(str(exc)) from exc
        if not 200 <= response.status <= 299:
            raise _translate(response.status, raw, str(response.reason))
        data: Manifest = json.loads(raw)
        return data


def _translate(status: int, body: object, reason: str) -> ApiError:
    """The error for a failed response: the message of its Status body, else the reason."""
    answer = _json_object(body)
    if answer is None:  # plain text: the server's router, not an API handler, answered
        return error_for(status, reason, from_status=False)
    return error_for(status, str(answer.get("message", reason)))


def _json_object(body: object) -> dict[str, Any] | None:
    try:
        decoded = json.loads(body)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return decoded if isinstance(decoded, dict) else None
