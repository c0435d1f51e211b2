"""A notification as bytes on the wire, in each webhook format. Pure.

* ``json``: the facts as one object (``Content-Type: application/json``).
* ``cloudevents``: CloudEvents 1.0, structured mode (``application/cloudevents+json``): type
  ``dev.coalmine.rollout.<kind>``, source the ModelDeployment's API path, subject
  ``namespace/name``, the facts as ``data``.
* ``slack``: ``{"text": ...}``, the Event's words, which Slack incoming webhooks (and most chat
  tools' Slack-compatible ones) post as a message.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from coalmine.api import API_VERSION
from coalmine.notify.transitions import Notification

Format = Literal["json", "cloudevents", "slack"]
CE_TYPE_PREFIX = "dev.coalmine.rollout."
_ICON = {"Normal": ":large_green_circle:", "Warning": ":red_circle:"}


def render(notification: Notification, fmt: Format) -> tuple[bytes, str]:
    """The request body and its Content-Type."""
    if fmt == "cloudevents":
        return _dump(cloudevent(notification)), "application/cloudevents+json"
    if fmt == "slack":
        return _dump(slack(notification)), "application/json"
    return _dump(plain(notification)), "application/json"


def plain(n: Notification) -> dict[str, Any]:
    return {"id": n.id, "time": _time(n), **n.data}


def cloudevent(n: Notification) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": n.id,
        "type": CE_TYPE_PREFIX + n.kind,
        "source": f"/apis/{API_VERSION}/namespaces/{n.namespace}/modeldeployments/{n.name}",
        "subject": f"{n.namespace}/{n.name}",
        "time": _time(n),
        "datacontenttype": "application/json",
        "data": n.data,
    }


def slack(n: Notification) -> dict[str, str]:
    icon = _ICON.get(n.event.type, "")
    return {"text": f"{icon} {n.namespace}/{n.name} {n.kind}: {n.event.message}".strip()}


def _time(n: Notification) -> str:
    return n.at.isoformat().replace("+00:00", "Z")


def _dump(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
