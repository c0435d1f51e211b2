"""Hand-made OCI archives are internally consistent: what containerd and buildah check."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

from e2e.devcluster.oci import LayerFile, layer_from_files, manifest_digest, write_image_archive


def _blobs(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_archive_digests_sizes_and_diff_ids_agree(tmp_path: Path) -> None:
    layer = layer_from_files([LayerFile("bin/hello", b"#!/bin/sh\necho hi\n")])
    archive = write_image_archive(tmp_path / "img.tar", "localhost/x:1", [layer], {"Cmd": ["x"]})
    files = _blobs(archive)
    index = json.loads(files["index.json"])
    manifest_ref = index["manifests"][0]
    assert manifest_ref["annotations"]["io.containerd.image.name"] == "localhost/x:1"
    manifest_raw = files["blobs/sha256/" + manifest_ref["digest"].split(":")[1]]
    assert hashlib.sha256(manifest_raw).hexdigest() == manifest_ref["digest"].split(":")[1]
    manifest = json.loads(manifest_raw)
    config = json.loads(files["blobs/sha256/" + manifest["config"]["digest"].split(":")[1]])
    compressed = files["blobs/sha256/" + manifest["layers"][0]["digest"].split(":")[1]]
    assert len(compressed) == manifest["layers"][0]["size"]
    # The config names the *uncompressed* layer; the manifest the compressed blob.
    assert config["rootfs"]["diff_ids"] == [
        "sha256:" + hashlib.sha256(gzip.decompress(compressed)).hexdigest()
    ]
    assert len(config["history"]) == 1  # buildah refuses a base without history per layer
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(compressed))) as tar:
        assert tar.getnames() == ["bin/hello"]


def test_the_same_input_gives_the_same_archive(tmp_path: Path) -> None:
    layer = layer_from_files([LayerFile("pause", b"\x7fELF")])
    first = write_image_archive(tmp_path / "a.tar", "n:1", [layer], {})
    second = write_image_archive(tmp_path / "b.tar", "n:1", [layer], {})
    assert first.read_bytes() == second.read_bytes()  # cacheable by content


def test_the_manifest_digest_is_the_sha256_of_the_manifest_blob(tmp_path: Path) -> None:
    """What the image builder pins the e2e base image by (`name@digest`)."""
    layer = layer_from_files([LayerFile("bin/hello", b"hi\n")])
    archive = write_image_archive(tmp_path / "img.tar", "localhost/x:1", [layer], {"Cmd": ["x"]})
    digest = manifest_digest(archive)
    manifest = _blobs(archive)["blobs/sha256/" + digest.removeprefix("sha256:")]
    assert digest == "sha256:" + hashlib.sha256(manifest).hexdigest()
