"""The pure parts of the mirror: its config file, the comparison, the canary's answer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from coalmine_serving.service.mirror import (
    MirrorConfig,
    MirrorTarget,
    _parse_head,
    canary_outputs,
    compare,
    parse_target,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_config_is_reread_so_a_shadow_step_starts_and_stops_without_a_restart(
    tmp_path: Path,
) -> None:
    path, clock = tmp_path / "mirror.json", Clock()
    config = MirrorConfig(path, clock)
    assert config.current() is None  # no file yet: no mirroring
    path.write_text(
        json.dumps({"url": "http://10.0.0.9:8080", "share": 0.5, "canaryRevision": "r2"})
    )
    assert config.current() is None  # not re-read within the second
    clock.now = 1.0
    assert config.current() == MirrorTarget("http://10.0.0.9:8080", 0.5, "r2")
    path.write_text("{}")
    clock.now = 2.0
    assert config.current() is None


def test_a_broken_config_keeps_the_last_good_target(tmp_path: Path) -> None:
    path, clock = tmp_path / "mirror.json", Clock()
    path.write_text(json.dumps({"url": "http://a:1", "share": 1, "canaryRevision": "r"}))
    config = MirrorConfig(path, clock)
    target = config.current()
    path.write_text('{"url": "file:///etc/passwd", "share": 1, "canaryRevision": "r"}')
    clock.now = 5.0
    assert config.current() == target


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ('{"url": "ftp://x", "share": 1, "canaryRevision": "r"}', "url"),
        ('{"url": "http://x:1", "share": 2, "canaryRevision": "r"}', "share"),
        ('{"url": "http://x:1", "share": 1}', "canaryRevision"),
        ("[]", "JSON object"),
    ],
)
def test_invalid_configs_are_refused_naming_the_field(body: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_target(body.encode())


def test_classes_agree_as_text_and_values_by_their_absolute_difference() -> None:
    assert compare(["setosa", "virginica"], ["setosa", "setosa"], classifier=True).agreed == 1
    assert compare([1, 0], [1.0, 0], classifier=True).agreed == 1  # "1" vs "1.0": not the same
    reg = compare([1.0, 2.0, 3.0], [1.0, 2.5, 2.0], classifier=False)
    assert reg == (1, 2, 1.5)


def test_a_canary_answering_other_rows_or_non_numbers_fails_the_comparison() -> None:
    with pytest.raises(ValueError, match="rows"):
        compare([1, 2], [1], classifier=True)
    with pytest.raises(ValueError, match="finite"):
        compare([1.0], [float("inf")], classifier=False)


def test_canary_outputs_of_v2_and_v1_answers() -> None:
    v2 = {"outputs": [{"name": "y", "shape": [2, 1], "datatype": "FP64", "data": [1.5, 2.5]}]}
    assert canary_outputs(json.dumps(v2).encode(), v1=False) == [1.5, 2.5]
    assert canary_outputs(b'{"predictions": [[0], [1]]}', v1=True) == [0, 1]
    assert np.array_equal(canary_outputs(b'{"predictions": [0, 1]}', v1=True), [0, 1])


def test_response_heads_without_a_length_are_refused() -> None:
    assert _parse_head(b"HTTP/1.1 503 x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n") == (
        503,
        0,
        True,
    )
    with pytest.raises(ValueError, match="content-length"):
        _parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    with pytest.raises(ValueError, match="HTTP/1"):
        _parse_head(b"SSH-2.0-OpenSSH\r\n\r\n")
