"""Write OCI image-layout archives by hand, for images too small to deserve a build tool.

`ctr images import` reads this layout: blobs under blobs/sha256, an index.json whose manifest
carries the image name in the `io.containerd.image.name` and `org.opencontainers.image.ref.name`
annotations. Layers are gzip'd tars; the config lists each layer's *uncompressed* digest
(diff_id), the manifest each layer's *compressed* digest: mixing the two up gives an image
containerd imports but refuses to unpack.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class LayerFile:
    """One file in a layer: its path inside the image, content and mode."""

    path: str
    content: bytes
    mode: int = 0o755


def layer_from_files(files: list[LayerFile]) -> bytes:
    """An uncompressed tar layer holding `files` (parent directories are implied)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for item in files:
            info = tarfile.TarInfo(item.path.lstrip("/"))
            info.size, info.mode, info.mtime = len(item.content), item.mode, 0
            tar.addfile(info, io.BytesIO(item.content))
    return buffer.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": _digest(data), "size": len(data), **extra}


def write_image_archive(
    out: Path, name: str, layers: list[bytes], image_config: dict[str, Any]
) -> Path:
    """Write an OCI layout tar at `out` for image `name` with uncompressed tar `layers`.

    `image_config` is the runtime part (Cmd, Entrypoint, Env, User, WorkingDir, ...).
    """
    compressed = [gzip.compress(layer, compresslevel=1, mtime=0) for layer in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": image_config,
            "rootfs": {"type": "layers", "diff_ids": [_digest(layer) for layer in layers]},
            # containers/image (buildah, podman) insists on one history entry per layer.
            "history": [
                {"created_by": f"e2e.devcluster.oci layer {i}"} for i in range(len(layers))
            ],
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": _descriptor(CONFIG_TYPE, config),
            "layers": [_descriptor(LAYER_TYPE, blob) for blob in compressed],
        },
        sort_keys=True,
    ).encode()
    annotations = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name}
    index = {
        "schemaVersion": 2,
        "manifests": [_descriptor(MANIFEST_TYPE, manifest, annotations=annotations)],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w") as tar:
        _add(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        _add(tar, "index.json", json.dumps(index).encode())
        for blob in [config, manifest, *compressed]:
            _add(tar, "blobs/sha256/" + _digest(blob).removeprefix("sha256:"), blob)
    return out


def manifest_digest(archive: Path) -> str:
    """The digest (`sha256:...`) of the one image manifest in the OCI archive at `archive`:
    the image's name by content, which a builder can be told to use instead of a tag."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise ValueError(f"{archive}: index.json is not a file")
        manifests = json.load(member)["manifests"]
    if len(manifests) != 1:
        raise ValueError(f"{archive}: {len(manifests)} manifests, expected one")
    return str(manifests[0]["digest"])


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))
