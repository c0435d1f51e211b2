"""A rollout a CI pipeline can wait on: ``kubectl coalmine status NAME --wait`` and ``kubectl
wait --for=condition=...`` (the kubectl built with the API server) against the real operator.

Each waiter starts right after the apply, as a pipeline step would, and must answer about the
spec just applied, never about the previous revision's status still on the object.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from e2e.devcluster import REPO_ROOT
from e2e.devcluster.sandbox import Sandbox
from e2e.devcluster.specs import spec
from e2e.devcluster.tinymodels import ModelArtifacts

pytestmark = pytest.mark.integration

PROMOTED, ROLLED_BACK, FAILED, TIMED_OUT = 0, 6, 7, 8


def _plugin(h: Sandbox, timeout: str) -> subprocess.Popen[str]:
    """``kubectl coalmine status iris --wait --timeout ...``, started now, answering later."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "kubectl-coalmine"), "status", "iris", "--wait",
         "--timeout", timeout, "--interval", "0.5", "-n", h.ns,
         "--kubeconfig", str(h.plane.kubeconfig)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT,
    )  # fmt: skip


def _kubectl_wait(h: Sandbox, condition: str, timeout: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(h.plane.bin_dir / "kubectl"), f"--cache-dir={h.workdir / 'kubectl-cache'}",
         "--kubeconfig", str(h.plane.kubeconfig), "-n", h.ns, "wait",
         f"--for=condition={condition}", f"--timeout={timeout}", "modeldeployments/iris"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    out, _ = process.communicate(timeout=240)
    return process.returncode, out


def _serve_v1(h: Sandbox, models: ModelArtifacts) -> None:
    h.apply(spec(models.model("v1"), prometheus=h.prometheus.url))
    h.wait_status(lambda s: s.get("phase") == "Healthy", 90, "v1 to serve")
    h.start_traffic()


def test_waiters_ignore_the_previous_revision_and_end_on_promotion(
    harness: Sandbox, models: ModelArtifacts
):
    h = harness
    _serve_v1(h, models)
    code, out = _finish(_kubectl_wait(h, "Promoted", "30s"))
    assert code == 0, out  # v1's own Promoted=True answers for v1

    # The operator is down: the object says Healthy (v1) for generation 1, the spec is 2.
    h.kill_operator()
    h.apply(spec(models.model("v2"), prometheus=h.prometheus.url))
    assert h.md()["metadata"]["generation"] == 2 and h.status()["phase"] == "Healthy"
    code, out = _finish(_plugin(h, "3s"))
    assert code == TIMED_OUT, out
    assert "generation 2: waiting for the operator to observe it" in out
    assert out.splitlines()[-1] == "timed out after 3s: the rollout is still running"
    code, out = _finish(_kubectl_wait(h, "Promoted", "3s"))
    assert code != 0 and "timed out" in out, out

    h.start_operator()
    plugin, kubectl = _plugin(h, "150s"), _kubectl_wait(h, "Promoted", "150s")
    code, out = _finish(plugin)
    assert code == PROMOTED, out
    assert "generation 2: Progressing, canary v2" in out  # it saw the canary run
    assert "Phase:      Healthy" in out and "Stable:     v2" in out  # the page, at the end
    assert out.splitlines()[-1] == "promoted: v2 serves all traffic"
    code, out = _finish(kubectl)
    assert code == 0, out
    status = h.status()
    assert status["stable"]["version"] == "v2"
    promoted = next(c for c in status["conditions"] if c["type"] == "Promoted")
    assert (promoted["status"], promoted["observedGeneration"]) == ("True", 2)


def test_waiters_end_on_rollback_and_on_a_refused_spec_with_their_codes(
    harness: Sandbox, models: ModelArtifacts
):
    h = harness
    _serve_v1(h, models)
    bad = spec(
        models.model("v2"),
        env={"COALMINE_SERVING_FAULT_ERROR_RATE": "0.3"},
        prometheus=h.prometheus.url,
    )
    h.apply(bad)
    plugin, kubectl = _plugin(h, "150s"), _kubectl_wait(h, "RolledBack", "150s")
    code, out = _finish(plugin)
    assert code == ROLLED_BACK, out
    assert "Rollback: v2" in out and "Check:    error-rate" in out  # the decision record
    assert out.splitlines()[-1].startswith("rolled back: AnalysisFailed: check error-rate")
    code, out = _finish(kubectl)
    assert code == 0, out
    assert h.status()["phase"] == "Degraded"

    # A spec beyond the operator's policy: the operator refuses it, the waiter says so.
    hostile = spec(models.model("v3"), prometheus=h.prometheus.url)
    hostile["runtime"]["image"] = "evil.example/serving:1"
    h.apply(hostile)
    code, out = _finish(_plugin(h, "60s"))
    assert code == FAILED, out
    assert out.splitlines()[-1].startswith(
        "failed: invalid spec: spec.runtime.image: evil.example/serving:1 is not"
    )
