"""Servers under benchmark, each started as its own process by bench/serving.py.

    python -m bench.servers ours-trivial PORT
    python -m bench.servers ours-model PORT MODEL.skops SHA256
    python -m bench.servers ours-trivial-noreceipt PORT
    python -m bench.servers ours-model-noreceipt PORT MODEL.skops SHA256
    python -m bench.servers starlette PORT RESPONSE_FILE

All use the same uvicorn settings (1 worker, uvloop, httptools, no access log; ours behind the
hardened protocol it ships with), so B1 compares only what happens between the socket and the
response bytes. Our server reads the rest of its settings from ``COALMINE_SERVING_*`` variables
(B5 passes ``RECEIPT_KEYS_FILE`` that way). The ``-noreceipt`` kinds are B4's peer: the same
server with the receipt step removed, here only; the product has no setting to turn receipts
off.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn


class TrivialRuntime:
    """A model that costs nothing: B1 measures the server, not the model."""

    format = "trivial"

    def __init__(self) -> None:
        from coalmine_serving.runtimes.base import Signature
        from coalmine_serving.settings import Task

        self.signature = Signature("x", 4, np.dtype(np.float32), "label", Task.CLASSIFICATION)
        self._out = np.zeros(1, dtype=np.int64)

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return self._out if len(rows) == 1 else np.zeros(len(rows), dtype=np.int64)


def ours(port: int, model: Any, **settings: Any) -> Any:
    from coalmine_serving.http.app import create_app
    from coalmine_serving.settings import load_settings

    return create_app(load_settings(model_name="iris", port=port, **settings), model=model)


def without_receipts(app: Any) -> Any:
    """Answer every prediction with an empty receipt: what a prediction costs without one.

    The response keeps its shape (``"parameters": {"receipt": ""}``) and drops the
    ``coalmine-receipt`` header (only non-empty receipts get one), so the difference to the
    real server is signing the outputs and carrying the token.
    """

    def no_receipt(outputs: np.ndarray, task: object) -> str:
        return ""

    app.state.service.joiner.receipt_for = no_receipt
    return app


def bare_starlette(body: bytes) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def infer(request: Request) -> Response:
        await request.body()  # read the request like a real handler would
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/v2/models/iris/infer", infer, methods=["POST"])])


def main(argv: list[str]) -> None:
    kind, port = argv[0], int(argv[1])
    base = kind.removesuffix("-noreceipt")
    if base == "ours-trivial":
        app = ours(port, TrivialRuntime())
    elif base == "ours-model":
        app = ours(port, None, model_uri=argv[2], model_format="skops", sha256=argv[3])
    elif kind == "starlette":
        app = bare_starlette(Path(argv[2]).read_bytes())
    else:
        raise SystemExit(f"unknown server kind {kind}")
    if kind.endswith("-noreceipt"):
        app = without_receipts(app)
    uvicorn.run(
        app, host="127.0.0.1", port=port, loop="uvloop", http=_protocol(kind, app),
        access_log=False, log_level="warning", workers=1,
    )  # fmt: skip


def _protocol(kind: str, app: Any) -> Any:
    """Ours runs behind the hardened protocol it ships with (header deadline and limits)."""
    if kind == "starlette":
        return "httptools"
    from coalmine_serving.http.protocol import guarded_protocol

    return guarded_protocol(app.state.service.settings)


if __name__ == "__main__":
    main(sys.argv[1:])
