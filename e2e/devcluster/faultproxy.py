"""A fault-injecting HTTP(S) reverse proxy, run as its own process on loopback.

It stands in front of Prometheus or the kube-apiserver and forwards every request unchanged
(headers, bearer token, body, streamed answers such as watches) until told to misbehave.
A test sends rules to ``PUT /__faults__`` (``e2e.devcluster.faultcontrol`` does it); the first
rule matching a request decides what that request gets:

* ``429`` / ``500``: that status with a Kubernetes-style ``Status`` body (429 with
  ``Retry-After: 1``), upstream never asked;
* ``hang``: no answer at all until the client gives up (a timeout on its side);
* ``slow``: forwarded after ``seconds``;
* ``truncate``: upstream's answer with its full ``Content-Length`` but only half the body,
  then the connection is cut;
* ``drop``: a streamed answer (a watch) is cut abruptly after ``seconds``.

For the apiserver the proxy terminates TLS with the apiserver's own serving certificate (valid
for 127.0.0.1 and signed by the cluster CA, so a kubeconfig only changes its ``server``) and
re-originates TLS upstream, verified against that CA. It holds no credentials: the client's
``Authorization`` header is passed on as is, so the API server still authenticates and
authorises the client itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientError, ClientResponse, ClientSession, ClientTimeout, TCPConnector, web

CONTROL = "/__faults__"
FAULTS = ("429", "500", "hang", "slow", "truncate", "drop")
# Hop-by-hop headers, and the ones aiohttp sets again for what it actually sends. Bodies pass
# as they are (still compressed if they were), so Content-Encoding stays.
SKIP_REQUEST = {"host", "connection", "keep-alive", "transfer-encoding", "content-length"}
SKIP_RESPONSE = {"connection", "keep-alive", "transfer-encoding", "content-length"}
HANG_LIMIT = 600.0  # seconds; a hung request is let go at last so the process can exit


@dataclass
class Rule:
    """Which requests (method, a substring of path+query, watch or not) get which fault."""

    fault: str
    path: str = ""
    method: str = ""
    watch: bool | None = None
    times: int | None = None  # None: every match until the rules change
    seconds: float = 0.0
    hits: int = 0

    def matches(self, request: web.Request) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method and request.method != self.method.upper():
            return False
        if self.watch is not None and _is_watch(request) != self.watch:
            return False
        return self.path in request.path_qs


@dataclass
class State:
    upstream: str
    upstream_ssl: ssl.SSLContext | bool
    rules: list[Rule] = field(default_factory=list)
    forwarded: int = 0
    session: ClientSession | None = None
    streams: dict[int, tuple[web.Request, ClientResponse]] = field(default_factory=dict)
    """Answers being streamed now: a ``drop`` rule cuts those open when it arrives too (the
    operator's watches were opened long before a test injects the fault)."""


def _is_watch(request: web.Request) -> bool:
    return request.query.get("watch") in ("true", "1") or "/watch/" in request.path


def _status_body(code: int, reason: str) -> bytes:
    return json.dumps({
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
        "reason": reason, "message": f"injected by the fault proxy: {reason}",
    }).encode()  # fmt: skip


async def control(request: web.Request) -> web.Response:
    state: State = request.app["state"]
    if request.method == "PUT":
        rules = [Rule(**r) for r in await request.json()]
        unknown = [r.fault for r in rules if r.fault not in FAULTS]
        if unknown:
            return web.json_response({"error": f"unknown faults {unknown}"}, status=400)
        state.rules = rules
        _drop_open_streams(state)
    return web.json_response({
        "forwarded": state.forwarded,
        "rules": [{"fault": r.fault, "path": r.path, "hits": r.hits} for r in state.rules],
    })  # fmt: skip


async def proxy(request: web.Request) -> web.StreamResponse:
    state: State = request.app["state"]
    rule = next((r for r in state.rules if r.matches(request)), None)
    if rule is not None:
        rule.hits += 1
        if rule.fault in ("429", "500"):
            return _refuse(int(rule.fault))
        if rule.fault == "hang":
            return await _hang(request)
        if rule.fault == "slow":
            await asyncio.sleep(rule.seconds)
    return await _forward(request, state, rule)


def _drop_open_streams(state: State) -> None:
    loop = asyncio.get_running_loop()
    for request, upstream in list(state.streams.values()):
        rule = next((r for r in state.rules if r.matches(request)), None)
        if rule is not None and rule.fault == "drop":
            rule.hits += 1
            loop.call_later(rule.seconds, _drop, request, upstream)


def _refuse(code: int) -> web.Response:
    reason = "TooManyRequests" if code == 429 else "InternalError"
    headers = {"Retry-After": "1"} if code == 429 else {}
    return web.Response(
        status=code, body=_status_body(code, reason), headers=headers,
        content_type="application/json",
    )  # fmt: skip


async def _hang(request: web.Request) -> web.StreamResponse:
    """Hold the request unanswered until the client closes it (or HANG_LIMIT)."""
    deadline = time.monotonic() + HANG_LIMIT
    while time.monotonic() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            break
        await asyncio.sleep(0.2)
    raise ConnectionResetError("hung request let go")


async def _forward(request: web.Request, state: State, rule: Rule | None) -> web.StreamResponse:
    assert state.session is not None
    state.forwarded += 1
    headers = {k: v for k, v in request.headers.items() if k.lower() not in SKIP_REQUEST}
    body = await request.read()
    async with state.session.request(
        request.method, state.upstream + request.path_qs, headers=headers,
        data=body or None, ssl=state.upstream_ssl, allow_redirects=False,
    ) as upstream:  # fmt: skip
        out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in SKIP_RESPONSE}
        if rule is not None and rule.fault == "truncate":
            return await _truncated(request, upstream.status, out_headers, await upstream.read())
        response = web.StreamResponse(status=upstream.status, headers=out_headers)
        await response.prepare(request)
        timer = None
        if rule is not None and rule.fault == "drop":  # on a clock: a quiet watch is cut too
            timer = asyncio.get_running_loop().call_later(rule.seconds, _drop, request, upstream)
        state.streams[id(request)] = (request, upstream)  # a Request is not hashable
        try:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        except (ConnectionError, ClientError):
            pass  # cut (by a drop or by the client): nothing more to send
        finally:
            state.streams.pop(id(request), None)
            if timer is not None:
                timer.cancel()
        return response


async def _truncated(
    request: web.Request, status: int, headers: dict[str, str], body: bytes
) -> web.StreamResponse:
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = len(body)  # promises the whole body...
    await response.prepare(request)
    await response.write(body[: len(body) // 2])  # ...delivers half
    _cut(request)
    return response


def _drop(request: web.Request, upstream: ClientResponse) -> None:
    _cut(request)
    upstream.close()


def _cut(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


def build_app(upstream: str, upstream_ssl: ssl.SSLContext | bool) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app["state"] = State(upstream.rstrip("/"), upstream_ssl)

    async def session(app: web.Application) -> Any:
        # No read timeout: watches stream for minutes; the client sets its own.
        app["state"].session = ClientSession(
            connector=TCPConnector(limit=0), timeout=ClientTimeout(total=None),
            auto_decompress=False,
        )  # fmt: skip
        yield
        await app["state"].session.close()

    app.cleanup_ctx.append(session)
    app.router.add_route("*", CONTROL, control)
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--cert", help="serve TLS with this certificate (and --key)")
    parser.add_argument("--key")
    parser.add_argument("--upstream-ca", help="verify the upstream's TLS against this CA")
    args = parser.parse_args(argv)
    server_ssl = None
    if args.cert:
        server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ssl.load_cert_chain(args.cert, args.key)
    upstream_ssl: ssl.SSLContext | bool = False
    if args.upstream_ca:
        upstream_ssl = ssl.create_default_context(cafile=args.upstream_ca)
    app = build_app(args.upstream, upstream_ssl)
    with contextlib.suppress(KeyboardInterrupt):
        web.run_app(app, host="127.0.0.1", port=args.port, ssl_context=server_ssl,
                    print=None, access_log=None)  # fmt: skip


if __name__ == "__main__":
    main()
