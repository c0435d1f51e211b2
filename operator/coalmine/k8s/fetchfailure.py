"""Why a Deployment's model fetch failed, read from its pods (pure dict parsing).

The fetch init container (``coalmine-serve fetch``) ends with the line
``coalmine-serve: error: <Reason>: <message>``, and it runs with
``terminationMessagePolicy: FallbackToLogsOnError``, so the kubelet copies the tail of its
output into ``status.initContainerStatuses[].state.terminated.message`` (``lastState`` once
it restarted). The server already redacted that line; it still passes through ``redact_uri``
here and is capped, because it lands in a status and Events anyone who can read the
ModelDeployment sees, and a pod's termination message is whatever the container wrote.
"""

from __future__ import annotations

import re
from typing import Any

from coalmine.k8s.protocol import Manifest
from coalmine.rollout.types import FetchFailure
from coalmine_serving.contract import redact_uri

MESSAGE_LIMIT = 512
"""Characters of the fetch's message kept: enough for a URI and an S3 code."""

_LINE = re.compile(r"coalmine-serve: error: (Artifact[A-Za-z]{1,40}): (.*)")
_URI = re.compile(r"[a-z][a-z0-9+.-]*://\S+")


def fetch_failure(pods: list[Manifest]) -> FetchFailure | None:
    """The newest fetch failure among ``pods`` (by ``finishedAt``), or None when no init
    container's termination message carries one."""
    found = [hit for pod in pods for hit in _failures_of(pod)]
    if not found:
        return None
    _, newest = max(found, key=lambda hit: hit[0])
    return newest


def _failures_of(pod: Manifest) -> list[tuple[str, FetchFailure]]:
    hits = []
    for status in (pod.get("status") or {}).get("initContainerStatuses") or []:
        for which in ("state", "lastState"):
            terminated = (status.get(which) or {}).get("terminated") or {}
            failure = _parse(terminated)
            if failure is not None:
                hits.append((str(terminated.get("finishedAt") or ""), failure))
    return hits


def _parse(terminated: dict[str, Any]) -> FetchFailure | None:
    """The failure in one terminated state: its exit code is not 0 and one of its message's
    lines is the fetch's error line (the last such line: the message is a log's tail)."""
    if not terminated or terminated.get("exitCode") == 0:
        return None
    message = str(terminated.get("message") or "")
    for line in reversed(message.splitlines()):
        matched = _LINE.search(line)
        if matched:
            return FetchFailure(reason=matched.group(1), message=_clean(matched.group(2)))
    return None


def _clean(message: str) -> str:
    """Every URI redacted (userinfo and query), then capped."""
    redacted = _URI.sub(lambda m: redact_uri(m.group(0)), message.strip())
    return redacted[:MESSAGE_LIMIT]
