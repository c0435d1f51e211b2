"""Bad model artifacts against the real commands, as a model pod runs them (failure scenarios
21, 23 and 24 in docs/failures.md): ``coalmine-serve serve`` refuses a code-running pickle and
a skops file with an untrusted type, and ``coalmine-serve fetch --unpack`` refuses archive
escapes; each exits non-zero with the reason, so the pod never turns Ready, and nothing runs
or lands outside the model directory."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.coalmine_serving import models
from tests.coalmine_serving.artifacts.test_archive_fetch import _member, _tar
from tests.coalmine_serving.test_runtimes import _Exploit

pytestmark = pytest.mark.integration


def _refused(proc: models.ServerProcess, log: Path) -> str:
    assert proc.process.wait(30) == 2
    proc.stop()
    return log.read_text()


def test_a_pickle_that_runs_code_is_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    artifact = models.joblib_artifact(tmp_path, _Exploit(marker))
    log = tmp_path / "server.log"
    refusal = _refused(models.ServerProcess(artifact, log), log)
    assert "needs allow_pickle=true" in refusal and "runs code" in refusal, refusal
    assert not marker.exists()


def test_a_skops_type_the_artifact_declares_is_not_trusted(tmp_path: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    rows, labels, _ = models.training_data()
    artifact = models.skops_artifact(tmp_path, DecisionTreeClassifier().fit(rows, labels))
    log = tmp_path / "server.log"
    assert "sklearn.tree._tree.Tree" in _refused(models.ServerProcess(artifact, log), log)


@pytest.mark.parametrize(
    "member",
    [_member("../evil"), _member("link", tarfile.SYMTYPE, "../../evil")],
    ids=["dotdot", "symlink-up"],
)
def test_fetch_unpack_refuses_an_escaping_archive(tmp_path: Path, member: tarfile.TarInfo) -> None:
    data = b"x" if member.isfile() else None
    archive = _tar(tmp_path / "evil.tgz", (_member("fine"), b"ok"), (member, data))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    dest = tmp_path / "models" / "m"
    run = subprocess.run(
        [sys.executable, "-m", "coalmine_serving.cli", "fetch", "--uri", str(archive),
         "--sha256", digest, "--dest", str(dest), "--unpack"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "escapes" in run.stderr
    assert not (tmp_path / "models" / "evil").exists() and not (tmp_path / "evil").exists()
