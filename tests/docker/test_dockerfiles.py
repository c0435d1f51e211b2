"""The Dockerfiles install only what the hashed locks name, keep no installer in the runtime
stage, and default to a base image pinned by digest.

Static checks of the files: docker builds are not run in the unit tier. The e2e tier builds
both images from these files (e2e/devcluster/images.py), and each build itself fails if the
runtime image's Python can import pip (a RUN step in the final stage).
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCKS = {
    lock.path.name: lock for lock in runpy.run_path(str(ROOT / "docker" / "locks.py"))["LOCKS"]
}
DOCKERFILES = {
    "serving": ROOT / "serving" / "Dockerfile",
    "operator": ROOT / "operator" / "Dockerfile",
}
DIGEST_PINNED = re.compile(r"^python:3\.11-slim@sha256:[0-9a-f]{64}$")


def instructions(dockerfile: Path) -> list[str]:
    """One string per instruction: comments dropped, continuation lines joined."""
    lines = [ln for ln in dockerfile.read_text().splitlines() if not ln.lstrip().startswith("#")]
    return [i.strip() for i in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines() if i.strip()]


def stages(dockerfile: Path) -> list[list[str]]:
    found: list[list[str]] = []
    for instruction in instructions(dockerfile):
        if instruction.startswith("FROM "):
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def pip_installs(instruction: str) -> list[str]:
    """Each `pip ... install ...` command of a RUN (split on &&)."""
    return [c.strip() for c in instruction.split("&&") if re.search(r"\bpip\b.*\binstall\b", c)]


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_every_install_is_a_hashed_lock_or_the_projects_own_wheel(image: str) -> None:
    installs = [c for i in instructions(DOCKERFILES[image]) for c in pip_installs(i)]
    locks = sorted(lock for c in installs for lock in re.findall(r"--requirement (\S+)", c))
    assert locks == sorted([f"{image}.lock.txt", "build.lock.txt"])
    for command in installs:
        if "uninstall" in command:
            continue
        assert "--no-deps" in command, command
        if "--requirement" in command:
            assert "--require-hashes" in command, command
            assert "--only-binary=:all:" in command, command
        else:
            assert command.endswith("/wheels/coalmine-*.whl"), command


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_the_deps_stage_copies_the_locks_docker_locks_writes(image: str) -> None:
    copies = [i for i in stages(DOCKERFILES[image])[0] if i.startswith("COPY ")]
    assert copies == [f"COPY docker/{image}.lock.txt docker/build.lock.txt ./"]
    assert {f"{image}.lock.txt", "build.lock.txt"} <= set(LOCKS)


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_the_runtime_stage_installs_nothing_and_refuses_a_base_with_pip(image: str) -> None:
    runtime = stages(DOCKERFILES[image])[-1]
    runs = " ".join(i for i in runtime if i.startswith("RUN "))
    assert not any(pip_installs(i) for i in runtime if "uninstall" not in i)
    assert "python3 -m pip uninstall --yes pip setuptools wheel" in runs
    assert runs.rstrip().endswith('! python3 -c "import pip" 2>/dev/null')
    # Only the venv comes from the build stages, and the venv lost pip there.
    assert [i for i in runtime if i.startswith("COPY")] == [
        "COPY --from=deps /opt/venv /opt/venv",
        "COPY --from=build /staging/opt/venv /opt/venv",
    ]
    deps_runs = " ".join(stages(DOCKERFILES[image])[0])
    assert "/opt/venv/bin/pip uninstall --yes pip setuptools" in deps_runs
    assert '! /opt/venv/bin/python3 -c "import pip"' in deps_runs


def test_both_images_default_to_the_same_base_pinned_by_digest() -> None:
    defaults = {
        image: re.findall(r"^ARG BASE_IMAGE=(\S+)$", path.read_text(), re.MULTILINE)
        for image, path in DOCKERFILES.items()
    }
    assert defaults["serving"] == defaults["operator"], defaults
    [base] = defaults["serving"]
    assert DIGEST_PINNED.match(base), base
    # The digest is documented with where it came from and how to bump it.
    assert base.split("@")[1] in (ROOT / "docker" / "README.md").read_text()
