"""What B9 counts over a window, each from the component that saw it (no self-reporting where
an outside witness exists):

- API requests: the API server's audit log (every request of a service account, one JSON line
  each, with the user, verb, resource and name), so the operator's and the bare peer's
  requests are told apart and kopf's own requests are counted along with ours;
- Prometheus queries: Prometheus' own ``prometheus_http_requests_total`` for the query APIs;
- CPU and RSS: ``/proc/<pid>`` of each operator process;
- tick lag: the operator's ``coalmine_tick_lag_seconds`` histogram (start of a reconcile
  minus the time it was due), as a delta over the window;
- log lines: the operator's log file.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

READ_VERBS = frozenset({"get", "list"})
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
OBJECT_NAME = re.compile(r"^(m\d{4})(?:$|[-.])")
"""The bench's ModelDeployments are m0000..m9999; children and Events start with that name."""


@dataclass
class ProcSample:
    cpu_seconds: float
    rss_bytes: int


def proc_sample(pid: int) -> ProcSample:
    stat = Path(f"/proc/{pid}/stat")
    fields = _stat_fields(stat)
    return ProcSample(cpu_seconds=cpu_seconds(stat), rss_bytes=int(fields[21]) * PAGE_BYTES)


def cpu_seconds(stat: Path) -> float:
    """User and system CPU of a process's or thread's ``stat`` file (``/proc/<pid>/stat``,
    ``/proc/<pid>/task/<tid>/stat``)."""
    fields = _stat_fields(stat)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _stat_fields(stat: Path) -> list[str]:
    # After the ")": state is field 3, utime 14 and stime 15, rss (pages) 24 (1-based).
    return stat.read_text().rsplit(")", 1)[1].split()


@dataclass
class AuditCounts:
    """Requests of one user over a window, by (verb, resource), and writes by object."""

    by_verb_resource: Counter[tuple[str, str]] = field(default_factory=Counter)
    writes_by_object: Counter[str] = field(default_factory=Counter)
    reads_by_object: Counter[str] = field(default_factory=Counter)

    @property
    def reads(self) -> int:
        return sum(n for (verb, _), n in self.by_verb_resource.items() if verb in READ_VERBS)

    @property
    def writes(self) -> int:
        return sum(n for (verb, _), n in self.by_verb_resource.items() if verb in WRITE_VERBS)


class AuditLog:
    """Reads the audit log from a byte offset: ``mark()`` starts a window, ``since()`` counts
    it (ResponseComplete events only, one per request; a watch counts when it ends)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def since(self, offset: int) -> dict[str, AuditCounts]:
        counts: dict[str, AuditCounts] = {}
        with self.path.open("rb") as log:
            log.seek(offset)
            for raw in log:
                event = json.loads(raw)
                if event.get("stage") != "ResponseComplete":
                    continue
                user = event["user"]["username"]
                ref = event.get("objectRef") or {}
                verb, resource = event["verb"], ref.get("resource", "")
                if ref.get("subresource"):
                    resource = f"{resource}/{ref['subresource']}"
                mine = counts.setdefault(user, AuditCounts())
                mine.by_verb_resource[(verb, resource)] += 1
                owner = OBJECT_NAME.match(ref.get("name") or "")
                if owner and verb in WRITE_VERBS:
                    mine.writes_by_object[owner.group(1)] += 1
                elif owner and verb in READ_VERBS:
                    mine.reads_by_object[owner.group(1)] += 1
        return counts


def scrape(url: str) -> dict[str, float]:
    """A /metrics page as {"name{label=value,...}": value} (labels sorted)."""
    text = httpx.get(url, timeout=10).text
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def delta(before: dict[str, float], after: dict[str, float], prefix: str) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if k.startswith(prefix)}


def prometheus_queries(before: dict[str, float], after: dict[str, float]) -> float:
    """Query API requests Prometheus answered between two scrapes of its own /metrics."""
    changed = delta(before, after, "prometheus_http_requests_total{")
    handlers = {"handler=/api/v1/query", "handler=/api/v1/query_range"}
    return sum(v for k, v in changed.items() if handlers & set(_labels(k)))


def _labels(key: str) -> list[str]:
    return key.split("{", 1)[1].rstrip("}").split(",")


def histogram_quantile(buckets: dict[float, float], q: float) -> float:
    """The q-quantile of a cumulative histogram {upper edge: count}, interpolated inside the
    bucket as Prometheus does; ``inf`` when it lies beyond the last finite edge."""
    edges = sorted(buckets)
    total = buckets[edges[-1]] if edges else 0.0
    if total <= 0:
        return math.nan
    rank, lower, below = q * total, 0.0, 0.0
    for edge in edges:
        count = buckets[edge]
        if count >= rank:
            if math.isinf(edge):
                return math.inf
            inside = count - below
            return lower + (edge - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = edge, count
    return math.inf


def lag_buckets(before: dict[str, float], after: dict[str, float]) -> dict[float, float]:
    changed = delta(before, after, "coalmine_tick_lag_seconds_bucket{")
    return {float(k.split("le=")[1].rstrip("}").split(",")[0]): v for k, v in changed.items()}


def count_lines(path: Path) -> int:
    with path.open("rb") as log:
        return sum(1 for _ in log)
