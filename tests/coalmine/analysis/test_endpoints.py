"""An object's analysis queries one of the operator's Prometheus endpoints, or nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from coalmine.analysis.endpoints import EndpointNotAllowedError, choose_endpoint
from coalmine.api.canary import PrometheusSource
from coalmine.settings import load_settings

SETTINGS = load_settings(
    default_prometheus_address="http://prometheus.monitoring:9090",
    prometheus_endpoints="team-a=http://prom-a.team-a:9090/,team-b=https://u:pw@prom-b:9090",
    prometheus_max_timeout=timedelta(seconds=10),
)


def test_unset_is_the_default_endpoint() -> None:
    endpoint = choose_endpoint(PrometheusSource(), SETTINGS)
    assert (endpoint.name, endpoint.url) == ("default", "http://prometheus.monitoring:9090")
    assert endpoint.timeout == timedelta(seconds=5)


def test_an_object_names_an_endpoint() -> None:
    endpoint = choose_endpoint(PrometheusSource(endpoint="team-b"), SETTINGS)
    assert endpoint.url == "https://u:pw@prom-b:9090"


def test_an_address_is_accepted_only_when_it_is_an_allowed_url() -> None:
    # Trailing slashes aside, it must be exactly one of the endpoints' URLs.
    source = PrometheusSource(address="http://prom-a.team-a:9090")
    assert choose_endpoint(source, SETTINGS).name == "team-a"
    for elsewhere in (
        "http://169.254.169.254/latest/meta-data",
        "http://prom-a.team-a:9090/api/v1/query?x=",
        "http://prom-a.team-a:9091",
        "http://u:pw@prom-b:9090",
    ):
        with pytest.raises(EndpointNotAllowedError) as refused:
            choose_endpoint(PrometheusSource(address=elsewhere), SETTINGS)
        assert refused.value.reason.startswith("spec.canary.analysis.prometheus.address: not one")
        assert elsewhere not in refused.value.reason


def test_an_unknown_endpoint_is_refused_naming_the_field() -> None:
    with pytest.raises(EndpointNotAllowedError, match=r"prometheus\.endpoint: no endpoint 'x'"):
        choose_endpoint(PrometheusSource(endpoint="x"), SETTINGS)


def test_the_operator_caps_the_timeout() -> None:
    source = PrometheusSource(timeout=timedelta(seconds=30))
    assert choose_endpoint(source, SETTINGS).timeout == timedelta(seconds=10)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timeout", "31s", "prometheus.timeout: must be between 1s and 30s"),
        ("timeout", "500ms", "prometheus.timeout: must be between 1s and 30s"),
        ("endpoint", "Team_A", "should match pattern"),
    ],
)
def test_the_spec_bounds_the_source(field: str, value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PrometheusSource.model_validate({field: value})


@pytest.mark.parametrize(
    "value",
    [
        "team-a",
        "team-a=prom:9090",
        "Team=http://p",
        "default=http://p",
        "a=http://p,a=http://q",
        "a=file:///etc/passwd",
    ],
)
def test_malformed_endpoint_settings_stop_the_operator(value: str) -> None:
    with pytest.raises(ValidationError, match="prometheus_endpoints"):
        load_settings(prometheus_endpoints=value)
