from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from coalmine_serving.artifacts.archive import ExtractLimits, extract
from coalmine_serving.artifacts.fetch import fetch
from coalmine_serving.cli import main
from coalmine_serving.errors import ArtifactError
from tests.loopback import serving


def _tar(path: Path, *members: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


def test_tar_with_model_and_subdir_extracts(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "ok.tgz", (_member("m/model.onnx"), b"abc"), (_member("m/x"), b"1"))
    files = extract(archive, tmp_path / "out")
    assert (tmp_path / "out/m/model.onnx").read_bytes() == b"abc" and len(files) == 2


@pytest.mark.parametrize(
    "member",
    [
        _member("../evil"),
        _member("/abs/evil"),
        _member("a/../../evil"),
        _member("link", tarfile.SYMTYPE, "../../etc/passwd"),
        _member("link", tarfile.SYMTYPE, "/etc/passwd"),
        _member("hard", tarfile.LNKTYPE, "../outside"),
        _member("dev", tarfile.CHRTYPE),
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "symlink-up", "symlink-abs", "hardlink", "device"],
)
def test_tar_attacks_are_refused_and_nothing_is_written(tmp_path: Path, member) -> None:  # type: ignore[no-untyped-def]
    data = b"x" if member.isfile() else None
    archive = _tar(tmp_path / "evil.tgz", (_member("fine"), b"ok"), (member, data))
    out = tmp_path / "deep" / "out"
    with pytest.raises(ArtifactError, match=r"escapes|device"):
        extract(archive, out)
    assert list(out.iterdir()) == []
    assert not (tmp_path / "deep" / "evil").exists() and not (tmp_path / "evil").exists()


def test_tar_bomb_is_refused_from_the_headers(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "bomb.tgz", (_member("zeros"), b"\0" * 5_000_000))
    assert archive.stat().st_size < 50_000  # it really is a bomb: tiny file, big content
    with pytest.raises(ArtifactError, match="bomb"):
        extract(archive, tmp_path / "out", ExtractLimits(max_total_bytes=1_000_000))
    with pytest.raises(ArtifactError, match="members"):
        extract(archive, tmp_path / "out", ExtractLimits(max_members=0))


def test_zip_slip_and_zip_bomb_are_refused(tmp_path: Path) -> None:
    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as zf:
        zf.writestr("../evil", b"x")
    with pytest.raises(ArtifactError, match="escapes"):
        extract(slip, tmp_path / "out")
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros", b"\0" * 20_000_000)
    with pytest.raises(ArtifactError, match="bomb"):
        extract(bomb, tmp_path / "out")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "out" / "zeros").exists()


def test_fetch_file_uri_verifies_sha256(tmp_path: Path) -> None:
    src = tmp_path / "model.onnx"
    src.write_bytes(b"model-bytes")
    digest = hashlib.sha256(b"model-bytes").hexdigest()
    dest = tmp_path / "dest"
    assert fetch(f"file://{src}", dest, digest).read_bytes() == b"model-bytes"
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        fetch(str(src), tmp_path / "other", "0" * 64)
    assert list((tmp_path / "other").iterdir()) == []  # no partial or unverified file left


def test_fetch_refuses_unsupported_schemes(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not supported yet") as refused:
        fetch("gs://bucket/model.onnx", tmp_path, "0" * 64)
    assert refused.value.reason == "ArtifactInvalid"


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    payload = b"served-over-http"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/hop"):  # a redirect to a scheme httpx cannot follow
                self.send_response(302)
                self.send_header("Location", "gopher://u:hopsecret@127.0.0.1/x?sig=hopsecret")
                self.end_headers()
                return
            if self.path.split("?", 1)[0] != "/model.onnx":  # a presigned query is ignored
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as url:
        yield url


def test_cli_fetch_over_http_and_size_cap(http_server: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    digest = hashlib.sha256(b"served-over-http").hexdigest()
    args = ["fetch", "--uri", f"{http_server}/model.onnx", "--sha256", digest]
    assert main([*args, "--dest", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a/model.onnx").read_bytes() == b"served-over-http"
    assert main([*args, "--dest", str(tmp_path / "b"), "--max-bytes", "4"]) == 2
    assert "error: ArtifactTooLarge: artifact is larger than the 4-byte limit" in (
        capsys.readouterr().err
    )
    missing = ["fetch", "--uri", f"{http_server}/nope", "--sha256", digest, "--dest", str(tmp_path)]
    assert main(missing) == 2


def test_fetch_unpacks_a_verified_archive(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "bundle.tgz", (_member("model.onnx"), b"abc"))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    out = fetch(str(archive), tmp_path / "dest", digest, unpack=True)
    assert (out / "model.onnx").read_bytes() == b"abc"


SECRETS = ("hunter2", "presignedsig", "hopsecret")


@pytest.mark.parametrize(
    ("path", "sha256", "reason"),
    [
        ("/nope", None, "ArtifactNotFound: GET http://REDACTED@127.0.0.1:"),
        ("/model.onnx", "0" * 64, "ArtifactChecksumMismatch: sha256 mismatch for http://REDACTED@"),
        ("/hop", None, "failed: "),
    ],
)
def test_fetch_errors_never_show_credentials(  # type: ignore[no-untyped-def]
    http_server: str, tmp_path: Path, capsys, path: str, sha256: str | None, reason: str
) -> None:
    # Basic-auth userinfo and a presigned signature in the query: init-container logs are
    # readable by anyone who can read pods, so neither may appear in any message.
    host = http_server.removeprefix("http://")
    uri = f"http://alice:hunter2@{host}{path}?X-Amz-Signature=presignedsig&X-Amz-Expires=60"
    digest = sha256 or hashlib.sha256(b"served-over-http").hexdigest()

    code = main(["fetch", "--uri", uri, "--sha256", digest, "--dest", str(tmp_path)])

    err = capsys.readouterr().err
    assert code == 2
    assert reason in err
    assert "?REDACTED" in err or path == "/hop"
    assert not any(secret in err for secret in SECRETS), err


def test_unreachable_host_error_is_redacted(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    uri = f"https://alice:hunter2@127.0.0.1:{port}/m.onnx?sig=presignedsig"
    assert main(["fetch", "--uri", uri, "--sha256", "0" * 64, "--dest", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "ArtifactUnreachable: GET https://REDACTED@127.0.0.1:" in err
    assert not any(secret in err for secret in SECRETS), err
