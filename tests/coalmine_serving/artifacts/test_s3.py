"""The pure parts of the ``s3://`` fetch: parsing, credentials from the environment, and the
mapping of client errors to reasons. The real downloads are in ``test_s3_integration.py``."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from minio.error import InvalidResponseError, S3Error, ServerError
from urllib3 import HTTPResponse
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from coalmine_serving.artifacts import reasons
from coalmine_serving.artifacts.s3 import (
    S3Object,
    S3Options,
    classify,
    endpoint_parts,
    env_credentials,
    parse_uri,
)
from coalmine_serving.cli import main
from coalmine_serving.errors import ArtifactError

TARGET = S3Object("models", "iris/v2/model.onnx")
OPTIONS = S3Options(endpoint="https://s3.example:9000")


def test_uri_is_bucket_and_key_with_slashes() -> None:
    assert parse_uri("s3://models/iris/v2/model.onnx") == TARGET
    assert str(TARGET) == "s3://models/iris/v2/model.onnx"


@pytest.mark.parametrize(
    "uri", ["s3://models", "s3://models/", "s3://ak:sk@models/m.onnx", "s3://models/m?x=1"]
)
def test_uri_without_a_key_or_with_credentials_is_refused(uri: str) -> None:
    with pytest.raises(ArtifactError) as refused:
        parse_uri(uri)
    assert refused.value.reason == reasons.INVALID
    assert "sk@" not in str(refused.value)


def test_endpoint_scheme_decides_tls() -> None:
    assert endpoint_parts("https://s3.example:9000") == ("s3.example:9000", True)
    assert endpoint_parts("http://127.0.0.1:8333/") == ("127.0.0.1:8333", False)


@pytest.mark.parametrize(
    "endpoint", ["ftp://h", "https://u:secretpw@h", "https://h/bucket", "https://h?x=1", "h:9000"]
)
def test_endpoint_with_path_user_or_other_scheme_is_refused(endpoint: str) -> None:
    with pytest.raises(ArtifactError) as refused:
        endpoint_parts(endpoint)
    assert "secretpw" not in str(refused.value)


def test_env_credentials_name_missing_variables_never_values() -> None:
    found = env_credentials({"AWS_ACCESS_KEY_ID": "AKIAX", "AWS_SECRET_ACCESS_KEY": "sekrit"})
    assert found == ("AKIAX", "sekrit", None)
    with pytest.raises(ArtifactError) as missing:
        env_credentials({"AWS_ACCESS_KEY_ID": "AKIAX", "AWS_SECRET_ACCESS_KEY": ""})
    assert missing.value.reason == reasons.NO_CREDENTIALS
    assert "AWS_SECRET_ACCESS_KEY" in str(missing.value)
    assert "AKIAX" not in str(missing.value)


def _s3_error(code: str, status: int) -> S3Error:
    response = HTTPResponse(body=b"", status=status)
    # The server's message may quote the request; classify must not repeat it.
    text = "SignatureDoesNotMatch for AKIALEAKED with StringToSign sekrit"
    return S3Error(response, code, text, "/models/k", "req", "host")


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        ("InvalidAccessKeyId", 403, reasons.ACCESS_DENIED),
        ("SignatureDoesNotMatch", 403, reasons.ACCESS_DENIED),
        ("AccessDenied", 403, reasons.ACCESS_DENIED),
        ("ExpiredToken", 400, reasons.ACCESS_DENIED),
        ("NoSuchKey", 404, reasons.NOT_FOUND),
        ("NoSuchBucket", 404, reasons.NOT_FOUND),
        ("SlowDown", 503, reasons.FETCH_FAILED),
    ],
)
def test_s3_codes_map_to_reasons_without_the_servers_text(
    code: str, status: int, reason: str
) -> None:
    error = classify(_s3_error(code, status), TARGET, OPTIONS)
    assert error.reason == reason
    assert str(error) == f"s3://models/iris/v2/model.onnx: {code} (HTTP {status})"


def test_a_broken_body_is_truncated_and_no_connection_is_unreachable() -> None:
    broken = ProtocolError("Connection broken: IncompleteRead(10 bytes read, 90 more expected)")
    assert classify(broken, TARGET, OPTIONS).reason == reasons.TRUNCATED
    refused = NewConnectionError(None, "Failed to establish a new connection")  # type: ignore[arg-type]
    retried = MaxRetryError(None, "/models/k?X-Amz-Signature=sig", refused)  # type: ignore[arg-type]
    error = classify(retried, TARGET, OPTIONS)
    assert error.reason == reasons.UNREACHABLE
    assert "s3.example:9000" in str(error) and "Signature" not in str(error)


def test_a_server_that_is_not_s3_is_a_fetch_failure() -> None:
    assert classify(ServerError("boom", 502), TARGET, OPTIONS).reason == reasons.FETCH_FAILED
    html = InvalidResponseError(200, "text/html", "<html>")
    assert classify(html, TARGET, OPTIONS).reason == reasons.FETCH_FAILED


@pytest.mark.parametrize(
    ("status", "reason"),
    [(401, reasons.ACCESS_DENIED), (403, reasons.ACCESS_DENIED), (404, reasons.NOT_FOUND),
     (500, reasons.FETCH_FAILED)],
)  # fmt: skip
def test_http_statuses_have_the_same_reasons(status: int, reason: str) -> None:
    assert reasons.for_http_status(status) == reason


def test_cli_names_the_reason_when_the_endpoint_is_unreachable(  # type: ignore[no-untyped-def]
    tmp_path: Path, capsys, monkeypatch
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNREACH")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unreach-secret")
    args = ["fetch", "--uri", "s3://models/m.onnx", "--sha256", "0" * 64, "--dest", str(tmp_path)]
    args += ["--s3-endpoint", f"http://127.0.0.1:{port}", "--s3-region", "us-east-1"]
    assert main([*args, "--s3-credentials", "env"]) == 2
    err = capsys.readouterr().err
    unreachable = "error: ArtifactUnreachable: s3://models/m.onnx: cannot reach the S3 endpoint"
    assert f"{unreachable} 127.0.0.1:{port} (NewConnectionError: Connection refused)" in err
    assert "AKIAUNREACH" not in err and "unreach-secret" not in err
    assert list(tmp_path.iterdir()) == []


def test_cli_says_when_the_secrets_keys_are_missing(  # type: ignore[no-untyped-def]
    tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    args = ["fetch", "--uri", "s3://models/m.onnx", "--sha256", "0" * 64, "--dest", str(tmp_path)]
    assert main([*args, "--s3-credentials", "env"]) == 2
    assert "error: ArtifactCredentialsMissing: " in capsys.readouterr().err
