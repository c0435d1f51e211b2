"""The chart's NetworkPolicies, rendered by a real helm: who may talk to the operator and the
model pods, and to whom the operator may talk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.charts.helm import CHART, Helm, one

SHOP = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}}}
MONITORING = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}


def policies(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o
        for o in objects
        if o["kind"] == "NetworkPolicy"
    }


def egress_ports(policy: dict[str, Any]) -> list[set[tuple[int, str]]]:
    rules = policy["spec"]["egress"]
    return [{(port["port"], port["protocol"]) for port in rule["ports"]} for rule in rules]


def test_operator_policy_by_default_opens_only_what_the_operator_uses(helm: Helm) -> None:
    objects = helm.template()
    policy = policies(objects)[("coalmine-system", "demo-coalmine-operator")]
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]

    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    # Ingress: the health port (the kubelet's probes) and /metrics (Prometheus), nothing else.
    assert policy["spec"]["ingress"] == [
        {"ports": [{"port": "health", "protocol": "TCP"}]},
        {"ports": [{"port": "metrics", "protocol": "TCP"}]},
    ]
    # Egress: DNS, the API server, and the default Prometheus' port (9090 from its URL).
    assert egress_ports(policy) == [
        {(53, "UDP"), (53, "TCP")},
        {(443, "TCP"), (6443, "TCP")},
        {(9090, "TCP")},
    ]
    assert all("to" not in rule for rule in policy["spec"]["egress"])
    assert len(policies(objects)) == 1  # no model-pod policy unless asked for


def test_prometheus_port_comes_from_the_address_and_api_server_can_be_pinned(
    helm: Helm, tmp_path: Path
) -> None:
    values = {
        "operator": {"defaultPrometheusAddress": "https://prom.example.org/api"},
        "networkPolicy": {"prometheusPorts": [9091], "apiServerCIDRs": ["10.0.0.1/32"]},
    }
    found = policies(helm.template(values, tmp_path))
    policy = found[("coalmine-system", "demo-coalmine-operator")]

    _dns, api, prometheus = policy["spec"]["egress"]
    assert {p["port"] for p in prometheus["ports"]} == {9091, 443}  # https without a port
    assert api["to"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}]


def test_model_pod_policies_open_the_serving_port_to_clients_and_prometheus(
    helm: Helm, tmp_path: Path
) -> None:
    values = {
        "operator": {"watchNamespaces": ["ml", "prod"]},
        "networkPolicy": {
            "modelPods": {"enabled": True, "clients": [SHOP], "prometheus": [MONITORING]}
        },
    }
    found = policies(helm.template(values, tmp_path))

    for namespace in ("ml", "prod"):
        policy = found[(namespace, "demo-coalmine-models")]
        assert policy["spec"]["podSelector"] == {
            "matchExpressions": [{"key": "coalmine.dev/model-deployment", "operator": "Exists"}]
        }
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        http = [{"port": "http", "protocol": "TCP"}]
        assert policy["spec"]["ingress"] == [
            {"ports": http, "from": [SHOP]},
            {"ports": http, "from": [MONITORING]},
        ]


def test_model_pod_policy_without_clients_opens_the_serving_port_only(
    helm: Helm, tmp_path: Path
) -> None:
    values = {"networkPolicy": {"modelPods": {"enabled": True, "namespaces": ["ml"]}}}
    policy = policies(helm.template(values, tmp_path))[("ml", "demo-coalmine-models")]

    assert policy["spec"]["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]


def test_model_pod_policy_needs_a_namespace_and_policies_can_be_turned_off(
    helm: Helm, tmp_path: Path
) -> None:
    values = tmp_path / "models.yaml"
    values.write_text(yaml.safe_dump({"networkPolicy": {"modelPods": {"enabled": True}}}))
    done = helm.run("template", "demo", str(CHART), "--values", str(values))
    assert done.returncode != 0
    assert "networkPolicy.modelPods.enabled needs networkPolicy.modelPods.namespaces" in done.stderr

    assert policies(helm.template({"networkPolicy": {"enabled": False}}, tmp_path)) == {}


def test_lint_strict_passes_with_every_policy_on(helm: Helm, tmp_path: Path) -> None:
    values = tmp_path / "policies.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "operator": {"watchNamespaces": ["ml"]},
                "networkPolicy": {
                    "apiServerCIDRs": ["10.0.0.1/32"],
                    "modelPods": {"enabled": True, "clients": [SHOP], "prometheus": [MONITORING]},
                },
            }
        )
    )
    done = helm.run("lint", "--strict", str(CHART), "--values", str(values))
    assert done.returncode == 0, done.stdout + done.stderr
