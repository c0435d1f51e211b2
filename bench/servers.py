"""Servers under benchmark, each started as its own process by bench/serving.py.

    python -m bench.servers ours-trivial PORT
    python -m bench.servers ours-model PORT MODEL.skops SHA256
    python -m bench.servers starlette PORT RESPONSE_FILE

All use the same uvicorn settings (1 worker, uvloop, httptools, no access log), so B1 compares
only what happens between the socket and the response bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn

UVICORN = {"host": "127.0.0.1", "loop": "uvloop", "http": "httptools", "access_log": False,
           "log_level": "warning", "workers": 1}  # fmt: skip


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
    if kind == "ours-trivial":
        app = ours(port, TrivialRuntime())
    elif kind == "ours-model":
        app = ours(port, None, model_uri=argv[2], model_format="skops", sha256=argv[3])
    elif kind == "starlette":
        app = bare_starlette(Path(argv[2]).read_bytes())
    else:
        raise SystemExit(f"unknown server kind {kind}")
    uvicorn.run(app, port=port, **UVICORN)


if __name__ == "__main__":
    main(sys.argv[1:])
