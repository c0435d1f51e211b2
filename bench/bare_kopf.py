"""B9's peer: a kopf operator that only watches the ModelDeployments and does nothing with
them. What any kopf operator of these objects costs (the watch stream, kopf's per-object
bookkeeping, the event loop), so the coalmine operator's CPU is reported as a ratio to it.

    kopf run --standalone --namespace NS bench/bare_kopf.py
"""

from __future__ import annotations

from typing import Any

import kopf


@kopf.on.event("coalmine.dev", "v1alpha1", "modeldeployments")
def seen(**_: Any) -> None:
    """Nothing: the cost measured is that of watching."""
