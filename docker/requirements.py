"""Print what pyproject.toml asks pip to install, one requirement per line, for the Dockerfiles'
dependency stage (which must not see the source, so that it stays cached across code changes).

    python3 requirements.py                   # the project's dependencies
    python3 requirements.py onnx,skops        # ... plus those extras
    python3 requirements.py --build-system    # the build backend (setuptools ...)

Standard library only: it runs on the bare base image, before anything is installed.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def requirements(pyproject: dict, extras: list[str]) -> list[str]:
    project = pyproject["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [name for name in extras if name not in optional]
    if unknown:
        raise SystemExit(f"unknown extras {unknown}; pyproject.toml has {sorted(optional)}")
    return [*project["dependencies"], *(req for name in extras for req in optional[name])]


def main(argv: list[str]) -> None:
    pyproject = tomllib.loads(Path("pyproject.toml").read_text())
    if argv[:1] == ["--build-system"]:
        wanted = pyproject["build-system"]["requires"]
    else:
        wanted = requirements(pyproject, [n for n in (argv[0] if argv else "").split(",") if n])
    print(*wanted, sep="\n")


if __name__ == "__main__":
    main(sys.argv[1:])
