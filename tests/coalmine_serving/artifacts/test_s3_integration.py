"""The ``s3://`` fetch against a real S3 server (SeaweedFS on loopback, real sockets, real
SigV4 checks): each way it can fail ends with its reason, nothing is left in the target
directory, and no credential appears in what the init container would print."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from coalmine_serving.cli import main
from e2e.devcluster.seaweedfs import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, SeaweedS3

pytestmark = pytest.mark.integration

MODEL = b"onnx-bytes-" * 1000  # 11 kB: big enough to cut in half
DIGEST = hashlib.sha256(MODEL).hexdigest()
BUCKET = "models"
KEY = "fraud/v2/model.onnx"
WRONG_SECRET = "wrong-secret-7c1e"


@pytest.fixture(scope="module")
def store(seaweedfs: SeaweedS3) -> SeaweedS3:
    seaweedfs.put(BUCKET, KEY, MODEL)
    return seaweedfs


def _fetch(  # type: ignore[no-untyped-def]
    endpoint: str, dest: Path, capsys, monkeypatch, *, key: str = KEY, bucket: str = BUCKET,
    sha256: str = DIGEST, secret: str = S3_SECRET_KEY, access: str = S3_ACCESS_KEY,
    extra: tuple[str, ...] = (),
) -> tuple[int, str]:  # fmt: skip
    """``coalmine-serve fetch`` as the init container runs it: keys from the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    args = ["fetch", "--uri", f"s3://{bucket}/{key}", "--sha256", sha256, "--dest", str(dest)]
    args += ["--filename", "model.onnx", "--s3-endpoint", endpoint, "--s3-region", S3_REGION]
    code = main([*args, "--s3-credentials", "env", *extra])
    err = capsys.readouterr().err
    assert S3_SECRET_KEY not in err and WRONG_SECRET not in err and access not in err, err
    return code, err


def test_download_with_keys_from_the_environment(store, tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code, err = _fetch(store.endpoint, tmp_path, capsys, monkeypatch)
    assert (code, err) == (0, "")
    assert (tmp_path / "model.onnx").read_bytes() == MODEL
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


@pytest.mark.parametrize(
    ("access", "secret", "code"),
    [
        (S3_ACCESS_KEY, WRONG_SECRET, "SignatureDoesNotMatch"),
        ("AKIANOBODY", S3_SECRET_KEY, "InvalidAccessKeyId"),
    ],
)
def test_wrong_credentials_are_refused_by_the_server(  # type: ignore[no-untyped-def]
    store, tmp_path, capsys, monkeypatch, access: str, secret: str, code: str
) -> None:
    exit_code, err = _fetch(
        store.endpoint, tmp_path, capsys, monkeypatch, access=access, secret=secret
    )
    assert exit_code == 2
    assert f"error: ArtifactAccessDenied: s3://{BUCKET}/{KEY}: {code} (HTTP 403)" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("bucket", "key", "code"),
    [(BUCKET, "fraud/v3/model.onnx", "NoSuchKey"), ("no-such-bucket", KEY, "NoSuchBucket")],
)
def test_missing_key_or_bucket(  # type: ignore[no-untyped-def]
    store, tmp_path, capsys, monkeypatch, bucket: str, key: str, code: str
) -> None:
    exit_code, err = _fetch(store.endpoint, tmp_path, capsys, monkeypatch, bucket=bucket, key=key)
    assert exit_code == 2
    assert f"error: ArtifactNotFound: s3://{bucket}/{key}: {code} (HTTP 404)" in err


def test_wrong_sha256_leaves_nothing(store, tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    exit_code, err = _fetch(store.endpoint, tmp_path, capsys, monkeypatch, sha256="0" * 64)
    assert exit_code == 2
    assert f"error: ArtifactChecksumMismatch: sha256 mismatch for s3://{BUCKET}/{KEY}" in err
    assert f"got {DIGEST}" in err
    assert list(tmp_path.iterdir()) == []


def test_too_big_stops_at_the_cap(store, tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    extra = ("--max-bytes", "4096")
    exit_code, err = _fetch(store.endpoint, tmp_path, capsys, monkeypatch, extra=extra)
    assert exit_code == 2
    assert "error: ArtifactTooLarge: artifact is larger than the 4096-byte limit" in err
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def cutting_proxy(store: SeaweedS3) -> Iterator[str]:
    """A loopback proxy in front of SeaweedFS that passes the request through untouched (so
    its signature holds) and then the response's headers and only half of its body, and
    closes: an object truncated on the way."""
    upstream = ("127.0.0.1", store.port)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve_one(client: socket.socket) -> None:
        with client, socket.create_connection(upstream) as server:
            server.sendall(_read_request(client))
            response = _read_all(server)
            head, _, body = response.partition(b"\r\n\r\n")
            client.sendall(head + b"\r\n\r\n" + body[: len(body) // 2])

    def accept() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve_one, args=(client,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def _read_request(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:  # a GET has no body
        data += sock.recv(65536)
    return data


def _read_all(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(65536)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(head.partition(b"\r\n\r\n")[2]) < length:
        head += sock.recv(65536)
    return head


def test_truncated_object_is_refused(cutting_proxy, tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    exit_code, err = _fetch(cutting_proxy, tmp_path, capsys, monkeypatch)
    assert exit_code == 2
    assert f"error: ArtifactTruncated: s3://{BUCKET}/{KEY}: " in err
    assert list(tmp_path.iterdir()) == []
