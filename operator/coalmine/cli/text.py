"""Small text helpers shared by the views: kubectl-style tables, ages and numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

COLUMN_GAP = "   "
MISSING = "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> str:
    """Left-aligned columns separated by three spaces, like ``kubectl get``.

    The last column is not padded, so long messages do not leave trailing blanks.
    """
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for row in [list(headers), *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append(indent + COLUMN_GAP.join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def age(then: datetime | None, now: datetime) -> str:
    """How long ago, in kubectl's style: ``45s``, ``3m12s``, ``25m``, ``5h``, ``3d``.

    >>> from datetime import timedelta
    >>> now = datetime(2026, 1, 1, 12)
    >>> [age(now - timedelta(seconds=s), now) for s in (45, 192, 1500, 18000, 259200)]
    ['45s', '3m12s', '25m', '5h', '3d']
    """
    if then is None:
        return MISSING
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    return f"{hours}h" if hours < 48 else f"{hours // 24}d"


def number(value: float | None) -> str:
    """Four significant digits; NaN and infinities shown as such, never as a pass-looking 0.

    >>> [number(v) for v in (None, 0.0012345, 412.0, 0.5, float("nan"))]
    ['-', '0.001234', '412', '0.5', 'NaN']
    """
    if value is None:
        return MISSING
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.4g}"


def parse_time(text: str | None) -> datetime | None:
    """An RFC3339 timestamp from the API server (``2026-11-27T05:00:00Z``), or None."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
