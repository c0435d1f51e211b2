"""Which series belong to the canary and to stable: {model, version, variant} (+ namespace)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from coalmine.api import format_duration
from coalmine_serving import contract


@dataclass(frozen=True)
class SideScope:
    """One side of a rollout: the label values its servers stamp on every series."""

    model: str
    version: str
    variant: str
    namespace: str
    namespace_label: str = "namespace"
    """Series label of the pod's namespace; empty when the scrape config sets none."""
    revision: str = ""
    """The side's revision, on every series its servers export (feedback: the revision that
    predicted), so a retried canary of the same version starts from zero counts instead of
    its predecessor's. Empty selects every revision (tests that start bare servers)."""

    def matchers(self, **extra: str) -> str:
        """A PromQL label selector, e.g. ``{model="iris",version="v2",variant="canary",
        namespace="ml",revision="5d8f..."}``."""
        labels = {
            contract.LABEL_MODEL: self.model,
            contract.LABEL_VERSION: self.version,
            contract.LABEL_VARIANT: self.variant,
        }
        if self.namespace_label:
            labels[self.namespace_label] = self.namespace
        if self.revision:
            labels[contract.LABEL_REVISION] = self.revision
        labels.update(extra)
        return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"

    def origin_matchers(self) -> str:
        """The selector of the feedback series: the same labels, read from the receipt."""
        return self.matchers()

    def deployment_matchers(self) -> str:
        """Every pod of the deployment, either side: where refused labels are counted."""
        labels = {contract.LABEL_MODEL: self.model}
        if self.namespace_label:
            labels[self.namespace_label] = self.namespace
        return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


@dataclass(frozen=True)
class Scope:
    """Canary and stable sides measured over the same window."""

    canary: SideScope
    stable: SideScope | None
    window: timedelta
    max_sample_age: timedelta = timedelta(seconds=90)
    """A side whose newest sample is older than this is stale: its checks are inconclusive
    (``coalmine.analysis.freshness``; 90s is three missed scrapes at the usual 30s)."""

    @property
    def range(self) -> str:
        """The range selector text: ``30s``, ``1m30s`` (whole seconds: the window grows with
        the step's age, and a fraction of a second adds nothing but odd-looking queries)."""
        return format_duration(timedelta(seconds=math.ceil(self.window.total_seconds())))


def _escape(value: str) -> str:
    # Label values are validated by the API, but a selector must stay well-formed regardless.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
