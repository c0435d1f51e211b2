"""``KubeApi`` over the official ``kubernetes`` client: raw paths, server-side apply.

Raw paths (``call_api``) instead of the generated typed APIs because server-side apply of
plain dicts, the scale subresource of any kind and custom resources all look the same that
way, and the generated models would only be converted back to dicts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from coalmine.k8s.protocol import ApiError, ConflictError, Manifest, NotFoundError, ObjectRef
from coalmine.settings import FIELD_MANAGER

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
CONFLICT_RETRIES = 3
REQUEST_TIMEOUT = 15.0  # seconds; a hung API call must not stall a tick forever


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig ($KUBECONFIG)."""
    try:
        if kubeconfig is None:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return client.ApiClient()
    except config.ConfigException:
        pass
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, client_configuration=configuration
    )
    return client.ApiClient(configuration)


class KubernetesApi:
    """The real ``KubeApi``."""

    def __init__(self, api_client: client.ApiClient, component: str = FIELD_MANAGER) -> None:
        self._api = api_client
        self._component = component

    def get(self, ref: ObjectRef) -> Manifest | None:
        try:
            return self._call("GET", ref.path())
        except NotFoundError:
            return None

    def apply(self, manifest: Manifest) -> Manifest:
        # force=true: the operator is the only writer of the fields it applies (children are
        # ours). Without force, a kubectl edit of one of them would wedge every future tick.
        ref = ObjectRef.of(manifest)
        return self._call("PATCH", ref.path(), manifest, APPLY, force=True)

    def apply_status(self, ref: ObjectRef, api_version: str, status: Manifest) -> None:
        body = {
            "apiVersion": api_version,
            "kind": ref.kind,
            "metadata": {"name": ref.name, "namespace": ref.namespace},
            "status": status,
        }
        self._call("PATCH", ref.path("status"), body, APPLY, force=True)

    def scale(self, ref: ObjectRef, replicas: int) -> None:
        self._call("PATCH", ref.path("scale"), {"spec": {"replicas": replicas}}, MERGE)

    def remove_annotations(self, ref: ObjectRef, keys: list[str]) -> None:
        if keys:
            patch = {"metadata": {"annotations": dict.fromkeys(keys)}}
            self._call("PATCH", ref.path(), patch, MERGE)

    def post_event(
        self,
        involved: Manifest,
        type_: Literal["Normal", "Warning"],
        reason: str,
        message: str,
    ) -> None:
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
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
            "source": {"component": self._component},
            "reportingComponent": self._component,
            "reportingInstance": self._component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        ref = ObjectRef("Event", involved["namespace"], "")
        self._call("POST", ref.collection_path(), event, "application/json")

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        force: bool = False,
    ) -> Manifest:
        # A 409 on apply or patch means someone wrote in between; every call here is a full
        # desired state or a key deletion, so re-sending it is correct.
        for attempt in range(CONFLICT_RETRIES):
            try:
                return self._once(method, path, body, content_type, force)
            except ConflictError:
                if attempt == CONFLICT_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _once(self, method: str, path: str, body: Any, content_type: str, force: bool) -> Manifest:
        query: list[tuple[str, str]] = []
        if method in ("PATCH", "POST"):
            query.append(("fieldManager", FIELD_MANAGER))
        if force:
            query.append(("force", "true"))
        # The client JSON-encodes dict bodies for JSON types; apply bodies go as text.
        payload = json.dumps(body) if content_type == APPLY else body
        try:
            request = self._api.param_serialize(
                method, path, query_params=query,
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=payload, auth_settings=["BearerToken"],
            )  # fmt: skip
            response = self._api.call_api(*request, _request_timeout=REQUEST_TIMEOUT)
            raw = response.read() or b"{}"  # type: ignore[no-untyped-call]
        except ApiException as exc:
            raise _translate(int(exc.status or 0), exc.body, str(exc.reason)) from exc
        if not 200 <= response.status <= 299:
            raise _translate(response.status, raw, str(response.reason))
        data: Manifest = json.loads(raw)
        return data


def _translate(status: int, body: object, reason: str) -> ApiError:
    message = _message(body, reason)
    if status == 404:
        return NotFoundError(status, message)
    if status == 409:
        return ConflictError(status, message)
    return ApiError(status, message)


def _message(body: object, reason: str) -> str:
    try:
        return str(json.loads(body).get("message", reason))  # type: ignore[arg-type]
    except (TypeError, ValueError, AttributeError):
        return reason
