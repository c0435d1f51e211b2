"""`make demo` on real pods: the story must happen on the single-node cluster, or this fails.

The demo starts and stops its own node cluster, so this module runs before the suite's
shared cluster starts (e2e/run.sh names it first; only one node cluster fits a machine).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from e2e.devcluster import REPO_ROOT
from e2e.devcluster.nodeconfig import BRIDGE

pytestmark = pytest.mark.e2e


def test_the_demo_promotes_v2_then_rolls_back_the_wrong_v3_on_real_pods(
    own_node_workdir: Path,
) -> None:
    assert os.geteuid() == 0, "the node cluster needs root (e2e/run.sh says so too)"
    demo = [sys.executable, "-m", "e2e.devcluster", "demo", "--cluster", "node"]
    result = subprocess.run(
        [*demo, "--workdir", str(own_node_workdir)],
        capture_output=True, text=True, timeout=1500, cwd=REPO_ROOT,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out[-8000:] + result.stderr[-3000:]
    assert "on real pods on this machine" in out and "stand-in" not in out.lower()
    assert "helm install coalmine" in out and "operator pod Ready" in out
    assert out.index("promoted, stable v2") < out.index("rolled back on accuracy, stable v2")
    assert "event RolledBack" in out
    # Requests went through the Service and were answered by the versions the story names.
    assert "answered by: v1" in out and ", v2 " in out and ", v3 " in out
    # No client request failed while the good v2 replaced v1, nor while the wrong v3 served
    # (rows: stage, sent to, sent, HTTP errors, no reply).
    for stage in ("v2: good canary", "v3: wrong, HTTP 200"):
        (row,) = [line.split() for line in out.splitlines()
                  if line.startswith(stage) and "Service" in line]  # fmt: skip
        assert row[-2:] == ["0", "0"] and int(row[-3]) > 100, row
    # Every label the pipeline posted through the Service joined, on whichever pod it reached;
    # the accuracy gate counted the canary's and said why, with the bound.
    joined = re.search(r"(\d+) of (\d+) labels joined .*; refused: none", out)
    assert joined and joined[1] == joined[2] and int(joined[1]) > 100, out[-4000:]
    assert re.search(r"\d+ labels: accuracy [0-9.]+ \(\d+/\d+\), bounds \[", out), out[-4000:]
    assert "rolled back on accuracy: value" in out
    assert "RESULT: v2 promoted, then v3 (HTTP 200 to its clients, wrong answers)" in out
    assert not Path(f"/sys/class/net/{BRIDGE}").exists(), "the demo left its pod bridge behind"
