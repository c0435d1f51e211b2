"""Which Prometheus an object's analysis queries: one of the operator's, never the object's own.

The operator's requests go from its pod, with its network reach: an object that could name
any URL could make the operator probe the cluster network or another tenant's Prometheus.
So the operator lists its endpoints (``default`` plus ``COALMINE_PROMETHEUS_ENDPOINTS``) and
an object picks one by name; the older ``address`` works only if it is one of those URLs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from coalmine.api.canary import PrometheusSource
from coalmine.settings import OperatorSettings

DEFAULT_ENDPOINT = "default"


@dataclass(frozen=True)
class Endpoint:
    """A Prometheus the operator allows, and how long one query may take there."""

    name: str
    url: str
    timeout: timedelta


class EndpointNotAllowedError(Exception):
    """The object names a Prometheus the operator does not allow; ``reason`` names the field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def allowed_endpoints(settings: OperatorSettings) -> dict[str, str]:
    """Every Prometheus an object may query, by name."""
    return {DEFAULT_ENDPOINT: settings.default_prometheus_address, **settings.prometheus_endpoints}


def choose_endpoint(source: PrometheusSource, settings: OperatorSettings) -> Endpoint:
    """The endpoint ``source`` names (``default`` when none), its timeout capped by the
    operator's ``prometheus_max_timeout``."""
    allowed = allowed_endpoints(settings)
    timeout = min(source.timeout, settings.prometheus_max_timeout)
    if source.address is not None:
        wanted = source.address.rstrip("/")
        for name, url in allowed.items():
            if url.rstrip("/") == wanted:
                return Endpoint(name, url, timeout)
        # The URL itself is not repeated: it may carry credentials, and the user wrote it.
        raise EndpointNotAllowedError(
            "spec.canary.analysis.prometheus.address: not one of the operator's Prometheus"
            f" endpoints; name one in prometheus.endpoint ({', '.join(sorted(allowed))})"
        )
    name = source.endpoint or DEFAULT_ENDPOINT
    if name not in allowed:
        raise EndpointNotAllowedError(
            f"spec.canary.analysis.prometheus.endpoint: no endpoint {name!r}; the operator has"
            f" {', '.join(sorted(allowed))}"
        )
    return Endpoint(name, allowed[name], timeout)


def endpoint_refusals(source: PrometheusSource, settings: OperatorSettings) -> list[str]:
    """The spec's choice of Prometheus as a policy refusal (``spec.<field>: <why>``, as
    ``coalmine.policy.refusals``), so a spec naming a Prometheus the operator does not allow
    is refused before any child is touched, and by the admission policy with the same words;
    measuring refuses it again (``refused_checks``) should such a spec ever get that far."""
    try:
        choose_endpoint(source, settings)
    except EndpointNotAllowedError as refused:
        return [refused.reason]
    return []
