"""Where a revision's model comes from, and where it lands inside the pod.

The init container copies (or downloads) the artifact into the ``models`` emptyDir and checks
its sha256; the server then loads that verified copy. A ``pvc://`` URI is mounted read-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from coalmine.api import RevisionRef
from coalmine.manifests.labels import Manifest

MODELS_DIR = "/models"
PVC_ROOT = "/mnt/pvc"
FORMAT_SUFFIX = {"onnx": "onnx", "skops": "skops", "joblib": "joblib"}


@dataclass(frozen=True)
class ArtifactSource:
    """Where the init container reads the artifact, and the PVC to mount for ``pvc://``."""

    uri: str
    claim: str | None = None


def artifact_source(revision: RevisionRef) -> ArtifactSource:
    """``pvc://claim/path`` becomes a read-only mount and a ``file://`` path inside it."""
    if revision.uri.startswith("pvc://"):
        claim, _, path = revision.uri[len("pvc://") :].partition("/")
        return ArtifactSource(uri=f"file://{PVC_ROOT}/{claim}/{path}", claim=claim)
    return ArtifactSource(uri=revision.uri)


def model_path(revision: RevisionRef, source: ArtifactSource) -> str:
    """Where the server loads the model: the verified copy, or the source when no digest is
    pinned (allowed only for local URIs by the API; the server then skips the check)."""
    if revision.sha256:
        return f"{MODELS_DIR}/model.{FORMAT_SUFFIX.get(revision.format or '', 'bin')}"
    return source.uri


def mounts(source: ArtifactSource, models_read_only: bool) -> list[Manifest]:
    """A container's mounts: the model directory, a scratch /tmp, the claim for ``pvc://``."""
    mounted: list[Manifest] = [
        {"name": "models", "mountPath": MODELS_DIR, "readOnly": models_read_only},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if source.claim:
        mounted.append(
            {"name": "artifact", "mountPath": f"{PVC_ROOT}/{source.claim}", "readOnly": True}
        )
    return mounted


# Room above the artifact cap for the filesystem's own rounding (blocks, directory entries):
# the fetch stops at the cap, so only a bug or another writer could reach the limit.
MODELS_DIR_SLACK_BYTES = 16 * 1024 * 1024


def models_size_limit(max_artifact_bytes: int) -> str:
    """``sizeLimit`` of the ``/models`` emptyDir: the artifact cap plus a little slack. The
    fetch writes one temporary file and renames it, so one artifact is all that lands there;
    past the limit the kubelet evicts the pod instead of letting the node's disk fill."""
    return str(max_artifact_bytes + MODELS_DIR_SLACK_BYTES)


def volumes(source: ArtifactSource, max_artifact_bytes: int) -> list[Manifest]:
    """The pod's volumes behind ``mounts``; /tmp lives in memory; both are capped."""
    listed: list[Manifest] = [
        {"name": "models", "emptyDir": {"sizeLimit": models_size_limit(max_artifact_bytes)}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
    ]
    if source.claim:
        listed.append(
            {
                "name": "artifact",
                "persistentVolumeClaim": {"claimName": source.claim, "readOnly": True},
            }
        )
    return listed
