"""docker/locks.py: the images' lock files still satisfy pyproject.toml, every pin is hashed.

The first test is the CI guard (offline): a dependency added or re-bounded in pyproject.toml
without `make lock` fails here, before an image is built from a stale lock.
"""

from __future__ import annotations

import runpy
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCKS = runpy.run_path(str(ROOT / "docker" / "locks.py"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
problems = LOCKS["problems"]
Lock = LOCKS["Lock"]
HASH = "--hash=sha256:" + "a" * 64
OTHER_HASH = "--hash=sha256:" + "b" * 64
SMALL_LOCK = f"""\
# header comment
kopf==1.45.2 \\
    {HASH} \\
    {OTHER_HASH}
    # via coalmine (pyproject.toml)
uvicorn==0.54.0 {HASH}
"""


def test_every_lock_file_satisfies_pyproject_and_pins_with_hashes() -> None:
    assert LOCKS["check"]() == []


def test_a_dependency_added_without_relocking_is_named() -> None:
    assert problems(["kopf>=1.37,<2", "left-pad>=1"], SMALL_LOCK) == [
        "left-pad>=1: not in the lock"
    ]


def test_a_raised_floor_the_pin_no_longer_meets_is_named_with_the_pin() -> None:
    assert problems(["kopf>=1.50,<2"], SMALL_LOCK) == ["kopf>=1.50,<2: the lock pins 1.45.2"]


def test_extras_and_name_spelling_do_not_hide_a_pin() -> None:
    assert problems(["uvicorn[standard]>=0.29,<1", "KOPF>=1.37"], SMALL_LOCK) == []


def test_a_requirement_for_another_platform_needs_no_pin() -> None:
    assert problems(["pywin32>=300; sys_platform == 'win32'"], SMALL_LOCK) == []
    assert problems(["uvloop>=0.19; sys_platform == 'linux'"], SMALL_LOCK) == [
        "uvloop>=0.19; sys_platform == 'linux': not in the lock"
    ]


def test_a_pin_without_a_hash_is_named() -> None:
    assert problems([], SMALL_LOCK + "orjson==3.10.0\n") == ["orjson==3.10.0 has no sha256"]


@pytest.mark.parametrize(
    "line", ["--index-url https://pypi.example/simple", "kopf>=1.37", "-e ./operator"]
)
def test_a_line_that_is_not_an_exact_pin_is_refused(line: str) -> None:
    """pip would take an index, a range or a local path from it: none belongs in a lock."""
    with pytest.raises(ValueError, match="not a pinned requirement"):
        problems([], SMALL_LOCK + line + "\n")


def test_the_runtime_locks_pin_no_installer() -> None:
    """The Dockerfiles uninstall pip and setuptools from the runtime venv after installing the
    lock: a dependency needing them at run time must be seen here, not in production."""
    for lock in LOCKS["LOCKS"]:
        if not lock.build_system:
            pinned = LOCKS["pins"]((ROOT / lock.path).read_text())
            assert not {"pip", "setuptools", "wheel"} & set(pinned), lock.path


def test_the_serving_lock_holds_its_runtimes_and_the_operator_lock_does_not() -> None:
    serving, operator = (
        LOCKS["pins"]((ROOT / "docker" / name).read_text())
        for name in ("serving.lock.txt", "operator.lock.txt")
    )
    assert {"onnxruntime", "skops", "scikit-learn"} <= set(serving)
    assert not {"onnxruntime", "skops"} & set(operator)
    assert {"kopf", "kubernetes", "uvicorn", "scipy"} <= set(operator) & set(serving)


def test_an_unknown_extra_stops_with_its_name() -> None:
    with pytest.raises(SystemExit, match="onxx"):
        LOCKS["requirements"](PYPROJECT, Lock(Path("x.txt"), extras=("onxx",)))


def test_uv_resolves_for_the_images_python_and_platform_whatever_runs_it() -> None:
    command = LOCKS["uv_command"]("uv", Lock(Path("x.txt"), extras=("onnx",)), False)
    assert "--generate-hashes" in command
    assert "--python-version=3.11" in command
    assert any(arg.startswith("--python-platform=x86_64-manylinux") for arg in command)
    assert "--upgrade" not in command
