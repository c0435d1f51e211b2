"""Build the project's images from its own Dockerfiles and load them into the node.

buildah (Debian's, daemonless) runs `bud` on serving/Dockerfile and operator/Dockerfile with
`--build-arg BASE_IMAGE=<the locally made base>` and `--pull=never`: no registry is contacted;
`RUN pip install` inside the build reaches PyPI, the one package index allowed. `--layers`
keeps every step's layer in buildah's storage (a cache dir), so rebuilding after a code change
redoes only the steps from the first changed COPY on. Images are tagged by buildah's image id,
so a changed image gets a new name and a pod spec that names it is a real rollout.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from coalmine.devcluster.baseimage import build_base_archive
from coalmine.devcluster.runtime import ContainerRuntime

REPO_ROOT = Path(__file__).resolve().parents[3]
HOST_PIP_CONF = Path("/etc/pip.conf")


def host_trust_volumes() -> list[str]:
    """Build-time bind mounts of this machine's pip.conf and CA bundle, if it has them.

    Where egress TLS is intercepted (as in this sandbox) pip inside the build must trust the
    same CA as pip on the host. Volumes exist only while a RUN step runs: nothing of the host's
    trust store ends up in the image.
    """
    volumes = []
    bundle = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if bundle and Path(bundle).is_file():
        volumes.append(f"--volume={bundle}:{bundle}:ro")
        # pip ignores the system store and uses its own certifi bundle unless told otherwise.
        if HOST_PIP_CONF.is_file():
            volumes.append(f"--volume={HOST_PIP_CONF}:{HOST_PIP_CONF}:ro")
    return volumes


@dataclass(frozen=True)
class ImageSpec:
    repository: str  # e.g. localhost/coalmine/serving
    dockerfile: Path  # relative to the build context (the repository root)


SERVING = ImageSpec("localhost/coalmine/serving", Path("serving/Dockerfile"))
OPERATOR = ImageSpec("localhost/coalmine/operator", Path("operator/Dockerfile"))


class ImageBuilder:
    def __init__(self, cache_dir: Path, context: Path = REPO_ROOT) -> None:
        self.cache_dir = cache_dir
        self.context = context
        self._storage = cache_dir / "buildah"

    def _buildah(self, *args: str) -> str:
        storage = [f"--root={self._storage / 'root'}", f"--runroot={self._storage / 'runroot'}"]
        argv = ["buildah", *storage, "--storage-driver=overlay", *args]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stdout[-4000:]}{result.stderr}")
        return result.stdout

    def base_image(self) -> str:
        """The base image's name, present in buildah's storage (built and loaded once)."""
        name, archive = build_base_archive(self.cache_dir)
        if name not in self._buildah("images", "--format={{.Name}}:{{.Tag}}").split():
            image_id = self._buildah("pull", f"oci-archive:{archive}").split()[-1]
            self._buildah("tag", image_id, name)
        return name

    def build(self, spec: ImageSpec, build_args: dict[str, str] | None = None) -> str:
        """Build `spec` from its Dockerfile; returns the image's name (tag = image id)."""
        args = {"BASE_IMAGE": self.base_image(), **(build_args or {})}
        work_tag = f"{spec.repository}:building"
        self._buildah(
            "bud", "--layers", "--force-rm", "--pull=never", "--isolation=chroot", "--network=host",
            f"--file={self.context / spec.dockerfile}", f"--tag={work_tag}", *host_trust_volumes(),
            *[f"--build-arg={key}={value}" for key, value in args.items()],
            str(self.context),
        )  # fmt: skip
        image_id = self._buildah("inspect", "--format={{.FromImageID}}", work_tag).strip()
        name = f"{spec.repository}:{image_id[:12]}"
        self._buildah("tag", work_tag, name)
        return name

    def load(self, name: str, runtime: ContainerRuntime) -> None:
        """Put image `name` into the node's containerd, unless it is there already."""
        if runtime.has_image(name):
            return
        archive = self.cache_dir / "archives" / (name.rsplit("/", 1)[1].replace(":", "-") + ".tar")
        archive.parent.mkdir(parents=True, exist_ok=True)
        archive.unlink(missing_ok=True)
        # Uncompressed: containerd imports plain tar layers, and gzip would cost most of the time.
        self._buildah("push", "--disable-compression", name, f"oci-archive:{archive}:{name}")
        try:
            runtime.import_archive(archive)
        finally:
            archive.unlink(missing_ok=True)
        # Every code change makes a new ~700 MB image; keep only the newest per repository in
        # the node's (persistent) image store.
        repository = name.rsplit(":", 1)[0]
        for older in runtime.images():
            if older.rsplit(":", 1)[0] == repository and older != name:
                runtime.remove_image(older)


def main() -> None:
    """`python -m coalmine.devcluster.images`: build (or reuse) every image; print the names.

    Run before pytest: a cold build takes minutes, more than a test's timeout should cover.
    """
    from coalmine.devcluster.runtime import cache_root

    builder = ImageBuilder(cache_root() / "images")
    for spec in (SERVING, OPERATOR):
        if (builder.context / spec.dockerfile).is_file():
            print(builder.build(spec), flush=True)


if __name__ == "__main__":
    main()
