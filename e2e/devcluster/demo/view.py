"""What the demo prints: pure functions from status dicts and counters to text lines.

Kept apart from the orchestration in story.py so the wording can be unit tested without a
cluster, and so story.py stays a short story.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

WHAT_IS_REAL_NODE = """\
coalmine demo: a canary release and an automatic rollback, on real pods on this machine.

REAL:  a single-node Kubernetes cluster built from source: etcd, kube-apiserver,
       kube-controller-manager, kube-scheduler, kubelet and kube-proxy (iptables), with
       containerd + runc and the CNI bridge. The operator and the model servers run as pods
       from images built from our own Dockerfiles; the operator is installed by `helm install`
       of charts/coalmine, under the chart's RBAC. Prometheus discovers the model pods through
       the API server. Client requests go through the Service's ClusterIP.
NOT IN THE CLUSTER: the clients (a thread of this process) and Prometheus.
"""

WHAT_IS_REAL_STANDIN = """\
coalmine demo: a canary release and an automatic rollback, on this machine.

REAL:  etcd, kube-apiserver and kube-controller-manager (built from source), Prometheus
       (scraping real /metrics), `coalmine-serve` model servers on real loopback sockets,
       and the coalmine operator as its own process under its own ServiceAccount and RBAC.
STAND-IN: there is NO kubelet and NO node in this mode. A kubelet stand-in (the same one the
       integration tests use, e2e.devcluster.standin) runs each pod's containers as
       local processes on 127.77.x.y and marks the pod Ready; a client generator splits
       requests across ready pods the way kube-proxy would.
"""


@dataclass
class ClientCounts:
    """What the demo's clients saw: per route (stand-in: the variant a request was sent to;
    node: the Service) requests sent, HTTP errors and no-replies; and which version answered."""

    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    answered_by: Counter[str] = field(default_factory=Counter)

    def __sub__(self, before: ClientCounts) -> ClientCounts:
        return ClientCounts(
            self.sent - before.sent,
            self.failed - before.failed,
            self.dropped - before.dropped,
            self.answered_by - before.answered_by,
        )


@dataclass
class Stage:
    """One act of the story, with what the clients saw while it ran."""

    title: str
    seconds: float = 0.0
    outcome: str = "did not finish"
    clients: ClientCounts = field(default_factory=ClientCounts)
    checks: list[dict[str, Any]] = field(default_factory=list)  # the last analysis seen
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds spent in it

    def phase_text(self) -> str:
        return ", ".join(f"{name} {seconds:.1f}s" for name, seconds in self.phases.items())


def progress_line(elapsed: float, status: dict[str, Any], steps: int) -> str:
    """One `kubectl get -w`-like line: phase, versions, weight, step, latest check values.

    Example: `[  12.4s] Progressing  stable=v1 canary=v2  weight=20%  step 1/2  error-rate
    0.0000 vs <= 0.05 pass`.
    """
    stable = (status.get("stable") or {}).get("version", "-")
    canary = (status.get("canary") or {}).get("version", "-")
    step = status.get("currentStep")
    step_text = f"step {step + 1}/{steps}" if isinstance(step, int) else "step -"
    parts = [
        f"[{elapsed:6.1f}s] {status.get('phase', 'Pending'):<12}",
        f"stable={stable} canary={canary}",
        f"weight={status.get('weight', 0):>3}%",
        step_text,
    ]
    checks = (status.get("analysis") or {}).get("checks") or []
    parts += [check_text(check) for check in checks]
    return "  ".join(parts)


def check_text(check: dict[str, Any]) -> str:
    value = check.get("value")
    shown = "n/a" if value is None else f"{value:.4g}"
    return f"{check['name']} {shown} vs {check.get('threshold') or '?'} {check['verdict']}"


def progress_key(status: dict[str, Any]) -> tuple[Any, ...]:
    """What counts as a change worth a new line (not the timestamps)."""
    checks = (status.get("analysis") or {}).get("checks") or []
    return (
        status.get("phase"),
        (status.get("stable") or {}).get("version"),
        (status.get("canary") or {}).get("version"),
        status.get("weight"),
        status.get("currentStep"),
        tuple((c["name"], c.get("value"), c["verdict"]) for c in checks),
    )


def summary(stages: list[Stage], record: list[dict[str, Any]], rollback: dict[str, Any]) -> str:
    lines = ["", "=" * 78, "SUMMARY", "", f"{'stage':<24}{'duration':>9}  outcome"]
    for s in stages:
        lines += [f"{s.title:<24}{s.seconds:>8.1f}s  {s.outcome}", f"{'':<35}({s.phase_text()})"]
    header = f"{'client requests during':<24}{'sent to':<9}{'sent':>7}{'HTTP errors':>13}"
    lines += ["", header + f"{'no reply':>10}"]
    for stage in stages:
        seen = stage.clients
        for route in sorted(seen.sent):
            counts = (seen.sent[route], seen.failed[route], seen.dropped[route])
            lines.append(f"{stage.title:<24}{route:<9}{counts[0]:>7}{counts[1]:>13}{counts[2]:>10}")
        if seen.answered_by:
            versions = ", ".join(f"{v} {n}" for v, n in sorted(seen.answered_by.items()))
            lines.append(f"{'':<24}answered by: {versions}")
    lines.append(
        "('no reply': connection refused or timed out; stopping pods drain for their preStop"
        " sleep first, so this should stay 0)"
    )
    lines += ["", "decision record of the rollback (last analysis before it):"]
    lines += [f"  {check_text(check)}" for check in record] or ["  (no analysis recorded)"]
    if rollback:
        lines.append(
            f"  -> rolled back on {rollback.get('check')}: value {_number(rollback.get('value'))}"
            f" vs {rollback.get('threshold')}; all traffic on stable at "
            f"{rollback.get('trafficOnStableAt')}, then canary scaled down, done at "
            f"{rollback.get('completedAt')}"
        )
    return "\n".join(lines)


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
