"""URIs in messages: the host and path stay (which artifact failed), credentials never do."""

from __future__ import annotations

import pytest

from coalmine_serving.contract import redact_text, redact_uri


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("https://models.example/iris.onnx", "https://models.example/iris.onnx"),
        ("file:///models/iris.onnx", "file:///models/iris.onnx"),
        ("pvc://claim/iris.onnx", "pvc://claim/iris.onnx"),
        ("https://u:pw@h.example/m.onnx", "https://REDACTED@h.example/m.onnx"),
        ("https://token@h.example/m.onnx", "https://REDACTED@h.example/m.onnx"),
        # S3 and GCS presigned URLs, an Azure SAS: the signature is in the query.
        ("https://b.s3.amazonaws.com/m?X-Amz-Credential=AKIA&X-Amz-Signature=ab",
         "https://b.s3.amazonaws.com/m?REDACTED"),
        ("https://storage.googleapis.com/b/m?X-Goog-Signature=cd", "https://storage.googleapis.com/b/m?REDACTED"),
        ("https://a.blob.core.windows.net/c/m?sv=1&sig=ef#frag", "https://a.blob.core.windows.net/c/m?REDACTED"),
        ("http://[::1/broken", "REDACTED"),  # unparseable: nothing of it
    ],
)  # fmt: skip
def test_redact_uri(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


def test_redact_text_finds_every_uri_in_a_message() -> None:
    message = "redirect from 'https://u:p@a.example/x?sig=1' to https://b.example/y?tok=2 failed"
    assert redact_text(message) == (
        "redirect from 'https://REDACTED@a.example/x?REDACTED' to "
        "https://b.example/y?REDACTED failed"
    )
