"""The images' lock files: every package each image installs, pinned, with its files' sha256.

    python3 docker/locks.py write --uv <uv>   # re-lock from pyproject.toml (PyPI): `make lock`
    python3 docker/locks.py write --uv <uv> --upgrade   # ... moving every pin to the newest
    python3 docker/locks.py check             # offline: the locks still satisfy pyproject.toml

The Dockerfiles install a lock with `pip install --require-hashes --no-deps --only-binary=:all:`:
pip takes only files whose hash is written here, so a package re-uploaded or swapped on the
index (or on the way from it) stops the build instead of entering the image, and nothing is
resolved, built from source or added at build time. `--no-deps` makes the lock the whole list;
`pip check` in the same step fails the build if it misses a dependency.

The locks are resolved for the images' interpreter and platform (TARGET), whatever machine runs
`make lock`. uv writes every file's hash for each pinned version, so other platforms (aarch64)
install from the same lock. `write` keeps the existing pins that still satisfy pyproject.toml
(uv reads the output file as preferences) unless `--upgrade`.

`check` runs in the unit tier (tests/docker/test_locks.py): a dependency added or re-bounded in
pyproject.toml without `make lock` fails CI, with no network.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The images' Python (python:3.11-slim, or Debian bookworm's 3.11 in the e2e base) on glibc Linux.
TARGET_PYTHON = "3.11"
TARGET_PLATFORM = "x86_64-manylinux_2_28"
TARGET_MARKERS = {
    "python_version": "3.11",
    "python_full_version": "3.11.2",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
# A pinned line, continuation lines joined: `name==version --hash=sha256:... ...`.
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)((?:\s+--hash=\S+)*)\s*$")


@dataclass(frozen=True)
class Lock:
    path: Path  # relative to the repository root
    extras: tuple[str, ...] = ()  # the project's dependencies plus these extras...
    build_system: bool = False  # ... or, instead, the build backend (pyproject's build-system)


LOCKS = (
    Lock(Path("docker/serving.lock.txt"), extras=("onnx", "skops", "s3")),
    Lock(Path("docker/operator.lock.txt")),
    Lock(Path("docker/build.lock.txt"), build_system=True),
)


def requirements(pyproject: dict, lock: Lock) -> list[str]:
    """What `lock` must satisfy, as pyproject.toml states it."""
    if lock.build_system:
        return list(pyproject["build-system"]["requires"])
    project = pyproject["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [name for name in lock.extras if name not in optional]
    if unknown:
        raise SystemExit(f"unknown extras {unknown}; pyproject.toml has {sorted(optional)}")
    return [*project["dependencies"], *(req for name in lock.extras for req in optional[name])]


@dataclass(frozen=True)
class Pin:
    version: str
    hashes: int


def pins(lock_text: str) -> dict[str, Pin]:
    """The lock's pins by canonical project name. A line that is neither a pin nor a comment
    is refused: pip would read options (an index URL) from it."""
    from packaging.utils import canonicalize_name

    joined = re.sub(r"\\\n", " ", lock_text)
    found = {}
    for line in joined.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        if match is None:
            raise ValueError(f"not a pinned requirement: {line[:120]!r}")
        name, version, hashes = match.groups()
        found[canonicalize_name(name)] = Pin(version, hashes.count("--hash=sha256:"))
    return found


def problems(wanted: list[str], lock_text: str) -> list[str]:
    """Each requirement of `wanted` (for TARGET) that the lock does not satisfy, and each pin
    without a hash; empty when the lock is good."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    locked = pins(lock_text)
    found = [
        f"{name}=={pin.version} has no sha256" for name, pin in locked.items() if not pin.hashes
    ]
    for text in wanted:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate(TARGET_MARKERS):
            continue
        pin = locked.get(canonicalize_name(req.name))
        if pin is None:
            found.append(f"{text}: not in the lock")
        elif not req.specifier.contains(pin.version, prereleases=True):
            found.append(f"{text}: the lock pins {pin.version}")
    return found


def check() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found = []
    for lock in LOCKS:
        path = ROOT / lock.path
        if not path.is_file():
            found.append(f"{lock.path}: missing")
            continue
        found += [
            f"{lock.path}: {p}" for p in problems(requirements(pyproject, lock), path.read_text())
        ]
    return found


def uv_command(uv: str, lock: Lock, upgrade: bool) -> list[str]:
    source = (
        ["-"] if lock.build_system else ["pyproject.toml", *(f"--extra={e}" for e in lock.extras)]
    )
    return [
        uv, "pip", "compile", *source, f"--output-file={lock.path}", "--generate-hashes",
        f"--python-version={TARGET_PYTHON}", f"--python-platform={TARGET_PLATFORM}",
        "--custom-compile-command=make lock", "--quiet", *(["--upgrade"] if upgrade else []),
    ]  # fmt: skip


def write(uv: str, upgrade: bool) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for lock in LOCKS:
        stdin = (
            "".join(f"{r}\n" for r in requirements(pyproject, lock)) if lock.build_system else ""
        )
        subprocess.run(uv_command(uv, lock, upgrade), cwd=ROOT, input=stdin, text=True, check=True)
        print(lock.path)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    writer = commands.add_parser("write", help="re-lock every image with uv (needs PyPI)")
    writer.add_argument("--uv", default="uv", help="the uv executable (make lock installs one)")
    writer.add_argument("--upgrade", action="store_true", help="newest versions, not the pins")
    commands.add_parser("check", help="the locks satisfy pyproject.toml (offline)")
    args = parser.parse_args(argv)
    if args.command == "write":
        write(args.uv, args.upgrade)
    found = check()
    if found:
        raise SystemExit(
            "locks out of date with pyproject.toml (run `make lock`):\n  " + "\n  ".join(found)
        )


if __name__ == "__main__":
    main(sys.argv[1:])
