"""What the demo prints: pure functions from status dicts and counters to text lines.

Kept apart from the orchestration in story.py so the wording can be unit tested without a
cluster, and so story.py stays a short story.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

STORY = """\
THE STORY: v1 serves; a good v2 is promoted under client traffic; then v3 answers HTTP 200 to
       every request but predicts the wrong class. Error rate and latency cannot see that;
       only the true labels can. A label pipeline posts them seconds after each prediction,
       in batches, to ANY pod through the Service, each with the prediction's signed receipt,
       and v3's accuracy gate rolls it back.
"""

WHAT_IS_REAL_NODE = (
    """\
coalmine demo: a canary release and an automatic rollback, on real pods on this machine.

REAL:  a single-node Kubernetes cluster built from source: etcd, kube-apiserver,
       kube-controller-manager, kube-scheduler, kubelet and kube-proxy (iptables), with
       containerd + runc and the CNI bridge. The operator and the model servers run as pods
       from images built from our own Dockerfiles; the operator is installed by `helm install`
       of charts/coalmine, under the chart's RBAC. Prometheus discovers the model pods through
       the API server. Client requests go through the Service's ClusterIP.
NOT IN THE CLUSTER: the clients and the label pipeline (threads of this process) and
       Prometheus.
"""
    + STORY
)

WHAT_IS_REAL_STANDIN = (
    """\
coalmine demo: a canary release and an automatic rollback, on this machine.

REAL:  etcd, kube-apiserver and kube-controller-manager (built from source), Prometheus
       (scraping real /metrics), `coalmine-serve` model servers on real loopback sockets,
       and the coalmine operator as its own process under its own ServiceAccount and RBAC.
STAND-IN: there is NO kubelet and NO node in this mode. A kubelet stand-in (the same one the
       integration tests use, e2e.devcluster.standin) runs each pod's containers as
       local processes on 127.77.x.y and marks the pod Ready; a client generator splits
       requests across ready pods the way kube-proxy would, and the label pipeline posts
       to a ready pod of the Service picked anew for each batch.
"""
    + STORY
)


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
class LabelCounts:
    """What the label pipeline did: labels it took from the clients, labels the pods joined,
    batches posted, and labels the pods refused, by reason (forged, unknown, duplicate,
    expired)."""

    added: int = 0
    joined: int = 0
    batches: int = 0
    refused: Counter[str] = field(default_factory=Counter)

    def __sub__(self, before: LabelCounts) -> LabelCounts:
        return LabelCounts(
            self.added - before.added,
            self.joined - before.joined,
            self.batches - before.batches,
            self.refused - before.refused,
        )

    def refused_text(self) -> str:
        return ", ".join(f"{n} {reason}" for reason, n in sorted(self.refused.items())) or "none"


@dataclass
class Stage:
    """One act of the story, with what the clients saw while it ran."""

    title: str
    seconds: float = 0.0
    outcome: str = "did not finish"
    clients: ClientCounts = field(default_factory=ClientCounts)
    labels: LabelCounts = field(default_factory=LabelCounts)
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


def summary(
    stages: list[Stage],
    record: list[dict[str, Any]],
    rollback: dict[str, Any],
    labels_total: LabelCounts | None = None,
) -> str:
    """Durations, what the clients saw, what the label pipeline did (``labels_total``: its
    totals after it flushed what was still waiting) and the rollback's decision record."""
    lines = ["", "=" * 78, "SUMMARY", "", f"{'stage':<24}{'duration':>9}  outcome"]
    for s in stages:
        lines += [f"{s.title:<24}{s.seconds:>8.1f}s  {s.outcome}", f"{'':<35}({s.phase_text()})"]
    lines += _client_table(stages) + _label_table(stages, labels_total)
    lines += ["", "decision record of the rollback (last analysis before it):"]
    lines += [line for check in record for line in _check_lines(check)] or [
        "  (no analysis recorded)"
    ]
    if rollback:
        lines.append(
            f"  -> rolled back on {rollback.get('check')}: value {_number(rollback.get('value'))}"
            f" vs {rollback.get('threshold')}; all traffic on stable at "
            f"{rollback.get('trafficOnStableAt')}, then canary scaled down, done at "
            f"{rollback.get('completedAt')}"
        )
    return "\n".join(lines)


def _client_table(stages: list[Stage]) -> list[str]:
    header = f"{'client requests during':<24}{'sent to':<9}{'sent':>7}{'HTTP errors':>13}"
    lines = ["", header + f"{'no reply':>10}"]
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
    return lines


def _label_table(stages: list[Stage], total: LabelCounts | None) -> list[str]:
    """Labels posted through the Service, per stage, and the pipeline's totals."""
    header = f"{'labels posted during':<24}{'added':>7}{'joined':>8}{'batches':>9}  refused"
    lines = ["", header]
    for stage in stages:
        got = stage.labels
        if not (got.added or got.batches):
            continue  # before the clients started
        counts = f"{got.added:>7}{got.joined:>8}{got.batches:>9}"
        lines.append(f"{stage.title:<24}{counts}  {got.refused_text()}")
    if total is not None:
        share = f" ({total.joined / total.added:.2%})" if total.added else ""
        lines += [
            "after the clients stopped, the pipeline posted the labels still waiting:",
            f"  {total.joined} of {total.added} labels joined{share} in {total.batches} batches;"
            f" refused: {total.refused_text()}",
        ]
    lines.append(
        "(each label waits a few seconds, then goes out in a batch on a new connection to the"
        " Service: any pod joins it, by the prediction's signed receipt)"
    )
    return lines


def _check_lines(check: dict[str, Any]) -> list[str]:
    """The check's verdict line, then the numbers behind it: its sample count (labels, for
    a quality check), the reason the operator gave, and labels the pods refused."""
    lines = [f"  {check_text(check)}"]
    samples = check.get("samples")
    unit = "labels" if check.get("kind") == "quality" else "samples"
    detail = f"{samples} {unit}" if samples is not None else ""
    reason = check.get("reason") or ""
    if detail or reason:
        lines.append(f"      {detail}{': ' if detail and reason else ''}{reason}")
    if check.get("kind") == "quality" and check.get("verdict") == "fail" and "bounds" in reason:
        lines.append(
            "      (it fails only when even the upper end of the accuracy's confidence interval"
            " is below the minimum: not a few unlucky labels)"
        )
    refused = check.get("refusedLabels") or {}
    if refused:
        counts = ", ".join(f"{n} {why}" for why, n in sorted(refused.items()))
        lines.append(f"      labels refused by the pods: {counts}")
    return lines


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
