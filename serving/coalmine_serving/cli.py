"""``coalmine-serve``: run the inference server, or fetch an artifact for an init container.

    coalmine-serve serve --model-name iris --model-uri /models/iris.onnx --sha256 <hex>
    coalmine-serve fetch --uri https://host/iris.onnx --sha256 <hex> --dest /models
    coalmine-serve fetch --uri s3://bucket/iris.onnx --s3-credentials env --sha256 <hex> ...

Every ``serve`` flag has a ``COALMINE_SERVING_<NAME>`` environment variable; flags win.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from coalmine_serving.artifacts.s3 import AWS_ENDPOINT, S3Options
from coalmine_serving.contract import redact_text
from coalmine_serving.errors import ArtifactError
from coalmine_serving.settings import ServingSettings, load_settings


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("serve", "fetch", "-h", "--help"):
        args.insert(0, "serve")  # `coalmine-serve --model-name x` means serve
    parsed = _parser().parse_args(args)
    try:
        if parsed.command == "fetch":
            return _fetch(parsed)
        return _serve(parsed)
    except (ArtifactError, ValidationError, ValueError, OSError) as exc:
        # Redacted: the message may quote a URI with credentials (userinfo, a presigned
        # query), and init-container logs are readable by anyone who can read pods. An
        # artifact's reason comes first: the pod's termination message then starts with it.
        reason = f"{exc.reason}: " if isinstance(exc, ArtifactError) else ""
        print(f"coalmine-serve: error: {reason}{redact_text(str(exc))}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coalmine-serve", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the inference server")
    for name, field in ServingSettings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        helptext = (field.description or "").replace("%", "%%")
        if field.annotation is bool:
            serve.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=helptext
            )
        else:
            serve.add_argument(flag, dest=name, default=None, help=helptext)
    fetch = commands.add_parser("fetch", help="copy or download an artifact and verify it")
    fetch.add_argument("--uri", required=True, help="file://, plain path, http(s):// or s3://")
    fetch.add_argument("--sha256", required=True, help="expected sha256 (hex) of the artifact")
    fetch.add_argument("--dest", required=True, type=Path, help="directory to write into")
    fetch.add_argument("--filename", help="file name in --dest (default: from the URI)")
    fetch.add_argument("--unpack", action="store_true", help="extract tar/zip archives safely")
    fetch.add_argument("--max-bytes", type=int, default=20 * 1024**3, help="size cap")
    fetch.add_argument("--s3-endpoint", default=AWS_ENDPOINT, help="http(s)://host[:port]")
    fetch.add_argument("--s3-region", help="the bucket's region (default: ask the store)")
    fetch.add_argument(
        "--s3-credentials",
        choices=["env", "identity"],
        default="identity",
        help="env: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (from a Secret); identity: the "
        "pod's own (IRSA web identity, ECS or EC2 role)",
    )
    return parser


def _fetch(parsed: argparse.Namespace) -> int:
    from coalmine_serving.artifacts.fetch import fetch

    result = fetch(
        parsed.uri,
        parsed.dest,
        parsed.sha256,
        filename=parsed.filename,
        unpack=parsed.unpack,
        max_bytes=parsed.max_bytes,
        s3=S3Options(
            endpoint=parsed.s3_endpoint, region=parsed.s3_region, credentials=parsed.s3_credentials
        ),
    )
    print(result)
    return 0


def _serve(parsed: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {
        name: getattr(parsed, name) for name in ServingSettings.model_fields
    }
    settings = load_settings(**overrides)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Load before binding the port: a bad artifact (wrong sha256, untrusted skops type, pickle
    # refused) exits non-zero with the reason, which Kubernetes shows as CrashLoopBackOff.
    from coalmine_serving.runtimes.loader import load_runtime

    model = load_runtime(settings)
    run(settings, model)
    return 0


def run(settings: ServingSettings, model: Any = None) -> None:
    """Serve with uvicorn: one worker, uvloop, httptools behind our hardened protocol."""
    import asyncio

    import uvicorn

    from coalmine_serving.http.app import create_app, internal_app

    app = create_app(settings, model)
    main = uvicorn.Server(server_config(settings, app, settings.port))
    if settings.metrics_port is None:
        main.run()
        return
    internal = _quiet_server(server_config(settings, internal_app(app), settings.metrics_port))
    internal.config.lifespan = "off"  # the main server runs the app's startup and shutdown
    with asyncio.Runner(loop_factory=main.config.get_loop_factory()) as runner:
        runner.run(_serve_both(main, internal))


def server_config(settings: ServingSettings, app: Any, port: int) -> Any:
    """uvicorn's config for ``app`` on ``port``, with the limits of ``settings``."""
    import uvicorn

    from coalmine_serving.http.protocol import guarded_protocol

    return uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        # uvicorn's own limit counts open sockets, so idle ones starved every request; the
        # protocol counts requests in flight instead, and the app sheds inference with 503.
        http=guarded_protocol(settings),
        limit_concurrency=None,
        timeout_keep_alive=30,
        ws="none",
        server_header=False,
    )


async def _serve_both(main: Any, internal: Any) -> None:
    import asyncio

    other = asyncio.create_task(internal.serve())
    try:
        await main.serve()
    finally:
        internal.should_exit = True
        await other


def _quiet_server(config: Any) -> Any:
    """A second server in the same process: the first one handles the signals."""
    import contextlib
    from collections.abc import Iterator

    import uvicorn

    class QuietServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return QuietServer(config)


if __name__ == "__main__":
    raise SystemExit(main())
