"""The wheel is the product and nothing else.

Built from a copy of this checkout (so the dev cluster, the demo and the tests sit right beside
the product, as they do in the repository), installed into a fresh virtualenv with the
product's own dependencies only (no extras, nothing from the dev venv), it must hold no
dev-cluster, demo or test code, and its three commands must run from there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = {"coalmine", "coalmine_serving"}
DEV_MODULES = {"devcluster", "demo", "dev", "e2e", "tests", "pytest_plugin", "conftest"}
# Build output and caches of this checkout: not source, and a stale build/ could leak old files.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".import_linter_cache",
)  # fmt: skip


def _clean_env() -> dict[str, str]:
    """This process's environment minus what would put the checkout's code on sys.path."""
    leaky = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"}
    return {key: value for key, value in os.environ.items() if key not in leaky}


def _run(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # Not tmp_path: pytest keeps the last runs' directories, and a venv is hundreds of MB.
    with tempfile.TemporaryDirectory(prefix="coalmine-wheel-") as name:
        yield Path(name)


@pytest.fixture(scope="module")
def wheel(workdir: Path) -> Path:
    """`pip wheel --no-deps` of the repository, as the Dockerfiles build it."""
    source = workdir / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE, symlinks=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "wheel", "--no-deps", "--quiet", "--wheel-dir", str(workdir / "dist"), "."],
         cwd=source, timeout=300)  # fmt: skip
    (built,) = (workdir / "dist").glob("coalmine-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(workdir: Path, wheel: Path) -> Path:
    """A fresh venv (no pip of its own) holding the wheel and the product's dependencies."""
    target = workdir / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(target)], cwd=workdir, timeout=120)
    python = target / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(python)]
    # --no-compile: byte-compiling scipy and numpy would be most of the time, and proves nothing.
    _run([*pip, "install", "--quiet", "--no-compile", str(wheel)], cwd=workdir, timeout=600)
    return target


def _dev_files(names: list[str]) -> list[str]:
    def dev(part: str) -> bool:
        stem = part.removesuffix(".py")
        return stem in DEV_MODULES or stem.startswith(("demo", "test_"))

    return [name for name in names if any(dev(part) for part in PurePosixPath(name).parts)]


def _outside_the_product(names: list[str]) -> list[str]:
    tops = {name: PurePosixPath(name).parts[0] for name in names}
    return [n for n, top in tops.items() if top not in PRODUCT_PACKAGES | {_dist_info(names)}]


def _dist_info(names: list[str]) -> str:
    (dist_info,) = {PurePosixPath(n).parts[0] for n in names if ".dist-info/" in n}
    return dist_info


def test_the_wheel_holds_the_product_and_nothing_else(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "coalmine/cli/main.py" in names and "coalmine_serving/cli.py" in names
    # The dashboard's page is package data: `kubectl coalmine dashboard` serves it from the wheel.
    page = [
        f"coalmine/cli/dashboard/static/{f}"
        for f in ("index.html", "dashboard.js", "dashboard.css")
    ]
    assert set(page) <= set(names), sorted(n for n in names if "dashboard" in n)
    assert not _dev_files(names)
    assert not _outside_the_product(names)
    assert _dist_info(names).startswith("coalmine-")


def test_the_three_commands_run_from_the_installed_wheel(venv: Path) -> None:
    python = str(venv / "bin" / "python")
    where = _run([python, "-c", "import coalmine; print(coalmine.__file__)"], venv, 60).stdout
    assert where.startswith(str(venv)), f"coalmine imported from {where}, not the wheel"

    coalmine = _run([str(venv / "bin" / "coalmine"), "--help"], venv, 120).stdout
    assert "coalmine: safe canary releases for machine-learning models" in coalmine
    commands = {line.split()[0] for line in coalmine.split("Commands:")[1].splitlines() if line}
    assert "operator" in commands and not commands & {"demo", "dev"}, commands

    kubectl = _run([str(venv / "bin" / "kubectl-coalmine"), "--help"], venv, 120).stdout
    assert "Usage: kubectl coalmine" in kubectl

    serve = _run([str(venv / "bin" / "coalmine-serve"), "--help"], venv, 120).stdout
    assert "usage: coalmine-serve" in serve and "serve" in serve
