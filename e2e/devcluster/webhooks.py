"""A webhook receiver for the notification tests: a real HTTP server on an address the
operator reaches (loopback for the integration tier's operator process, the pod bridge for the
operator pod on the node). It records each request; it can fail its first requests with 500
or never answer, to show retries and that a silent receiver holds nothing up.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class WebhookReceiver:
    host: str = "127.0.0.1"
    fail_first: int = 0
    """Answer 500 to this many requests first."""
    hang: bool = False
    """Never answer (until stopped)."""
    received: list[tuple[float, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    """(arrival time, headers, JSON body) of each request answered 200, in arrival order."""
    requests: int = 0
    _release: threading.Event = field(default_factory=threading.Event)

    def start(self) -> str:
        """Serve on a free port; returns the URL to configure."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests += 1
                if receiver.hang:
                    receiver._release.wait(300)
                    return
                if receiver.requests <= receiver.fail_first:
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.received.append((time.time(), dict(self.headers), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://{self.host}:{self._server.server_address[1]}/hook"

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def bodies(self, subject: str | None = None) -> list[dict[str, Any]]:
        """Bodies in arrival order; with ``subject`` (``namespace/name``) only that object's."""
        return [b for _, _, b in self.received if subject is None or _subject(b) == subject]

    def kinds(self, subject: str | None = None) -> list[str]:
        return [kind_of(b) for b in self.bodies(subject)]


def kind_of(body: dict[str, Any]) -> str:
    """``rolledback`` from a plain body's ``kind`` or a CloudEvent's ``type``."""
    return str(body.get("kind") or body["type"].rsplit(".", 1)[1])


def _subject(body: dict[str, Any]) -> str:
    return str(body.get("subject") or f"{body.get('namespace')}/{body.get('name')}")
