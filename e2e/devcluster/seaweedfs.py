"""A real S3-compatible server for tests: SeaweedFS (``weed server -s3``) on loopback.

Master, volume server, filer and S3 gateway in one process, each on a free port (gRPC ports
too, so nothing depends on the default ``port + 10000``), with an identities file: only the
keys in ``S3_ACCESS_KEY``/``S3_SECRET_KEY`` may read or write, so a wrong key is really
refused by the server. Telemetry is off (the default would report to seaweedfs.com).
The binary is built from the Go module proxy by ``e2e/cluster/seaweedfs.sh``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from e2e.devcluster import REPO_ROOT
from e2e.devcluster.process import ManagedProcess, free_port, wait_until

S3_ACCESS_KEY = "coalmine-test-key"
S3_SECRET_KEY = "coalmine-test-secret-d9f2"
S3_REGION = "us-east-1"
_BUILD_SCRIPT = REPO_ROOT / "e2e" / "cluster" / "seaweedfs.sh"


def weed_binary() -> Path:
    """$COALMINE_WEED if set, else the binary e2e/cluster/seaweedfs.sh builds (or has cached)."""
    override = os.environ.get("COALMINE_WEED")
    if override:
        return Path(override)
    result = subprocess.run(
        ["bash", str(_BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True
    )
    return Path(result.stdout.strip().splitlines()[-1]) / "weed"


class SeaweedS3:
    """``weed server -s3`` with one identity; ``endpoint`` is its S3 API (plain HTTP)."""

    def __init__(self, workdir: Path, binary: Path | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "weed.log"
        config = workdir / "s3.json"
        ports = {name: free_port() for name in ("master", "volume", "filer")}
        grpc = {name: free_port() for name in ("master", "volume", "filer", "s3")}
        self._config = config
        self._process = ManagedProcess(
            "seaweedfs",
            [
                str(binary or weed_binary()),
                "server",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-dir={workdir / 'data'}",
                f"-master.port={ports['master']}",
                f"-master.port.grpc={grpc['master']}",
                "-master.telemetry=false",
                "-master.volumeSizeLimitMB=64",
                f"-volume.port={ports['volume']}",
                f"-volume.port.grpc={grpc['volume']}",
                "-volume.max=100",  # each bucket is a collection with volumes of its own
                "-filer",
                f"-filer.port={ports['filer']}",
                f"-filer.port.grpc={grpc['filer']}",
                "-s3",
                f"-s3.port={self.port}",
                f"-s3.port.grpc={grpc['s3']}",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                f"-s3.config={config}",
            ],
            self.log_path,
            cwd=workdir,
        )

    def start(self, timeout: float = 60.0) -> None:
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        identity = {
            "name": "coalmine-test",
            "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        self._config.write_text(json.dumps({"identities": [identity]}))
        self._process.start()
        wait_until(self._ready, timeout=timeout, what="SeaweedFS S3 bucket", process=self._process)

    def stop(self) -> None:
        self._process.stop()

    @property
    def process(self) -> ManagedProcess:
        return self._process

    def client(self, access_key: str = S3_ACCESS_KEY, secret_key: str = S3_SECRET_KEY):  # type: ignore[no-untyped-def]
        from minio import Minio

        return Minio(
            self.endpoint.removeprefix("http://"),
            access_key=access_key,
            secret_key=secret_key,
            secure=False,
            region=S3_REGION,
        )

    def put(self, bucket: str, key: str, data: bytes) -> None:
        import io

        client = self.client()
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
        client.put_object(bucket, key, io.BytesIO(data), len(data))

    def _ready(self) -> bool | None:
        """Ready when a bucket can be made: the filer and a volume server are up, not only
        the S3 port. None (not yet) while any of them is still starting."""
        try:
            client = self.client()
            if not client.bucket_exists("ready-probe"):
                client.make_bucket("ready-probe")
            return True
        except Exception:
            return None
