"""Build the project's images from its own Dockerfiles and load them into the node.

buildah (Debian's, daemonless) runs `bud` on serving/Dockerfile and operator/Dockerfile with
`--build-arg BASE_IMAGE=<the locally made base, by digest>` and `--pull=never`: no registry is
contacted; `RUN pip install` of the hashed lock files (docker/*.lock.txt) inside the build
reaches PyPI, the one package index allowed. `--layers`
keeps every step's layer in buildah's storage (a cache dir), so rebuilding after a code change
redoes only the steps from the first changed COPY on. Images are tagged by buildah's image id,
so a changed image gets a new name and a pod spec that names it is a real rollout.

Each build then drops what the previous build of the same image left behind and this one no
longer uses: older tags of the repository, and the step images (`--layers`' cache) that the
previous build made or reused but this one did not. The dependency stages this build reused
stay, so the store holds about one build per image instead of growing with every code change.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from e2e.devcluster import REPO_ROOT
from e2e.devcluster.baseimage import build_base_archive
from e2e.devcluster.oci import manifest_digest
from e2e.devcluster.runtime import ContainerRuntime

HOST_PIP_CONF = Path("/etc/pip.conf")
# `bud --layers` prints each step's image: "--> Using cache <64 hex>" when reused, then
# "--> <11 hex>" (both forms for a reused step, the short one alone for a new one).
STEP_IMAGE = re.compile(r"^--> (?:Using cache )?([0-9a-f]{11,64})$", re.MULTILINE)


def step_images(bud_output: str) -> set[str]:
    """The ids (full or abbreviated) of the step images a `bud --layers` run made or reused."""
    return set(STEP_IMAGE.findall(bud_output))


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

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        storage = [f"--root={self._storage / 'root'}", f"--runroot={self._storage / 'runroot'}"]
        argv = ["buildah", *storage, "--storage-driver=overlay", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=False)

    def _buildah(self, *args: str) -> str:
        result = self._run(*args)
        if result.returncode != 0:
            argv = " ".join(map(str, result.args))
            raise RuntimeError(f"{argv} failed:\n{result.stdout[-4000:]}{result.stderr}")
        return result.stdout

    def base_image(self) -> str:
        """The base image by digest (`repository@sha256:...`), present in buildah's storage
        (built and loaded once).

        The digest is read from the archive this machine built, not from the store: `bud`
        then uses exactly that image, and fails ("image not known") rather than build on
        whatever else carries the tag.
        """
        name, archive = build_base_archive(self.cache_dir)
        pinned = f"{name.rsplit(':', 1)[0]}@{manifest_digest(archive)}"
        if self._run("inspect", "--type=image", pinned).returncode != 0:
            image_id = self._buildah("pull", f"oci-archive:{archive}").split()[-1]
            self._buildah("tag", image_id, name)
        return pinned

    def build(self, spec: ImageSpec, build_args: dict[str, str] | None = None) -> str:
        """Build `spec` from its Dockerfile; returns the image's name (tag = image id)."""
        args = {"BASE_IMAGE": self.base_image(), **(build_args or {})}
        work_tag = f"{spec.repository}:building"
        result = self._run(
            "bud", "--layers", "--force-rm", "--pull=never", "--isolation=chroot", "--network=host",
            f"--file={self.context / spec.dockerfile}", f"--tag={work_tag}", *host_trust_volumes(),
            *[f"--build-arg={key}={value}" for key, value in args.items()],
            str(self.context),
        )  # fmt: skip
        record = self._step_record(spec)
        previous = self._read_steps(record)
        used = self._full_ids(step_images(result.stdout))
        if result.returncode != 0:
            # A failed build's step images are pruned after the next successful one.
            self._write_steps(record, previous | used)
            raise RuntimeError(f"buildah bud failed:\n{result.stdout[-4000:]}{result.stderr}")
        image_id = self._buildah("inspect", "--format={{.FromImageID}}", work_tag).strip()
        name = f"{spec.repository}:{image_id[:12]}"
        self._buildah("tag", work_tag, name)
        self._remove_older_tags(spec.repository, keep={name, work_tag})
        self._remove_stale_steps(previous - used - self._steps_of_other_images(record))
        self._write_steps(record, used)
        return name

    def _remove_older_tags(self, repository: str, keep: set[str]) -> None:
        """Untag this repository's older images; an image left without tags is removed, with
        the step images above it that nothing else builds on (buildah walks up the parents)."""
        names = self._buildah("images", "--format={{.Name}}:{{.Tag}}").split()
        older = [n for n in names if n.rsplit(":", 1)[0] == repository and n not in keep]
        self._remove(older)

    def _remove_stale_steps(self, stale: set[str]) -> None:
        """Remove step images of the previous build that this one did not use (old source
        copies, an old dependency stage after pyproject.toml changed), if still untagged.

        Not `buildah rmi --prune`: it removes every untagged image without children, and the
        last step of a non-final stage is one (`COPY --from` makes no parent link), so it would
        take the dependency stage above it, the cache that makes a code change cheap.
        """
        listing = self._buildah("images", "--all", "--no-trunc", "--format={{.ID}} {{.Tag}}")
        untagged = {
            image_id.removeprefix("sha256:")
            for image_id, tag in (line.split() for line in listing.splitlines() if line.strip())
            if tag == "<none>"
        }
        self._remove(sorted(stale & untagged))

    def _remove(self, images: list[str]) -> None:
        """Best effort: an image a concurrent build or a working container holds stays."""
        if not images:
            return
        result = self._run("rmi", *images)
        if result.returncode != 0:
            print(f"images: some old images kept: {result.stderr.strip()}", file=sys.stderr)

    def _full_ids(self, ids: set[str]) -> set[str]:
        """Expand `bud`'s abbreviated ids to the store's full ones."""
        listing = self._buildah("images", "--all", "--no-trunc", "--format={{.ID}}").split()
        full = {image_id.removeprefix("sha256:") for image_id in listing}
        return {f for f in full if any(f.startswith(short) for short in ids)}

    def _step_record(self, spec: ImageSpec) -> Path:
        """Where the step images of `spec`'s last build are listed (inside the store, so
        wiping the store wipes the record too)."""
        return self._storage / "steps" / (spec.repository.replace("/", "_") + ".ids")

    def _steps_of_other_images(self, record: Path) -> set[str]:
        others = [p for p in record.parent.glob("*.ids") if p != record]
        return set().union(*(self._read_steps(p) for p in others))

    @staticmethod
    def _read_steps(record: Path) -> set[str]:
        return set(record.read_text().split()) if record.is_file() else set()

    @staticmethod
    def _write_steps(record: Path, ids: set[str]) -> None:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text("".join(f"{image_id}\n" for image_id in sorted(ids)))

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
        runtime.remove_untagged_images()


def main(argv: list[str] | None = None) -> None:
    """`python -m e2e.devcluster.images [STORE]`: build (or reuse) every image; print the
    names. STORE is the image store's directory (default: the cache's ``images``; the kind
    tier keeps a store of its own, e2e/kind/run.sh).

    Run before pytest: a cold build takes minutes, more than a test's timeout should cover.
    """
    from e2e.devcluster.runtime import cache_root

    args = sys.argv[1:] if argv is None else argv
    builder = ImageBuilder(Path(args[0]) if args else cache_root() / "images")
    for spec in (SERVING, OPERATOR):
        if (builder.context / spec.dockerfile).is_file():
            print(builder.build(spec), flush=True)


if __name__ == "__main__":
    main()
