"""`make demo` end to end: the story must happen, or this fails (so the demo cannot rot).

Runs `python -m e2e.devcluster demo` from the repository root exactly as the Makefile does;
it starts its own control plane, Prometheus, operator and kubelet stand-in, and must stop them
all.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from e2e.devcluster import REPO_ROOT

pytestmark = pytest.mark.integration


def test_demo_promotes_v2_then_rolls_back_the_wrong_v3_on_its_labels(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "e2e.devcluster", "demo", "--cluster", "standin",
         "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out[-6000:] + result.stderr[-3000:]
    assert "NO kubelet" in out  # says plainly what is a stand-in
    assert "promoted, stable v2" in out
    assert out.index("promoted, stable v2") < out.index("rolled back on accuracy, stable v2")
    assert "event RolledBack" in out and "accuracy" in out
    # v3's clients got no HTTP error (rows: stage, variant, sent, HTTP errors, no reply)
    v3_rows = [line.split() for line in out.splitlines() if line.startswith("v3: wrong, HTTP 200")]
    requests = [row for row in v3_rows if row[4] in ("stable", "canary")]
    assert requests and all(row[6] == "0" for row in requests), v3_rows
    # Every label the pipeline posted joined, on whichever pod it reached.
    joined = re.search(r"(\d+) of (\d+) labels joined .*; refused: none", out)
    assert joined and joined[1] == joined[2] and int(joined[1]) > 100, out[-4000:]
    assert re.search(r"\d+ labels: accuracy [0-9.]+ \(\d+/\d+\), bounds", out), out[-4000:]
    assert "RESULT: v2 promoted, then v3 (HTTP 200 to its clients, wrong answers)" in out
    assert not _processes_using(tmp_path), "the demo left processes behind"


def _processes_using(workdir: Path) -> list[str]:
    """Command lines of live processes that mention the demo's directory (etcd's data dir,
    the model servers' mounts, Prometheus' config all live there)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # exited while we looked
        if str(workdir) in text:
            found.append(text)
    return found
