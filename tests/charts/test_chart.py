"""The Helm chart, linted and rendered by a real helm: what it installs, and what it refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.helm import CHART, Helm, one

OPERATOR_RULES = yaml.safe_load((CHART / "files" / "operator-rules.yaml").read_text())
CLUSTER_SCOPED = {"customresourcedefinitions", "namespaces"}


def test_lint_strict_passes_for_defaults_and_every_optional_part(
    helm: Helm, tmp_path: Path
) -> None:
    values = tmp_path / "all-on.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "operator": {"watchNamespaces": ["ml", "prod"]},
                "rbac": {"namespaced": True},
                "podMonitor": {"enabled": True, "labels": {"release": "kps"}},
                "monitoring": {
                    "operatorPodMonitor": {"enabled": True},
                    "prometheusRule": {"enabled": True},
                    "dashboard": {"enabled": True},
                },
            }
        )
    )
    for args in ([], ["--values", str(values)]):
        done = helm.run("lint", "--strict", str(CHART), *args)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "0 chart(s) failed" in done.stdout


LEASE_RULES = yaml.safe_load((CHART / "files" / "leader-election-rules.yaml").read_text())


def test_two_leader_elected_pods_rolled_one_at_a_time_under_a_disruption_budget(
    helm: Helm,
) -> None:
    objects = helm.template()
    deployment = one(objects, "Deployment")

    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert deployment["metadata"]["namespace"] == "coalmine-system"
    settings = env(container_of(objects))
    assert settings["COALMINE_LEADER_ELECTION"] == "true"
    assert settings["COALMINE_LEADER_ELECTION_LEASE_NAME"] == "demo-coalmine"
    assert settings["COALMINE_LEASE_DURATION_SECONDS"] == "12"
    budget = one(objects, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]


def test_the_lease_rights_are_a_role_in_the_release_namespace_only(helm: Helm) -> None:
    objects = helm.template()
    role = one(objects, "Role", "coalmine-system")
    assert role["rules"] == LEASE_RULES
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        }
    ]
    binding = one(objects, "RoleBinding", "coalmine-system")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    (cluster_role,) = [o for o in objects if o["kind"] == "ClusterRole"]
    assert all("leases" not in rule["resources"] for rule in cluster_role["rules"])


def test_without_leader_election_exactly_one_pod_replaced_with_recreate(
    helm: Helm, tmp_path: Path
) -> None:
    objects = helm.template({"leaderElection": {"enabled": False}}, tmp_path)
    deployment = one(objects, "Deployment")

    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert env(container_of(objects))["COALMINE_LEADER_ELECTION"] == "false"
    assert not [o for o in objects if o["kind"] in ("PodDisruptionBudget", "Role")]


def test_probes_hit_the_liveness_endpoint_on_the_configured_port(
    helm: Helm, tmp_path: Path
) -> None:
    objects = helm.template({"operator": {"livenessPort": 9000}}, tmp_path)
    container = container_of(objects)

    assert container["ports"][0] == {"name": "health", "containerPort": 9000, "protocol": "TCP"}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert env(container)["COALMINE_LIVENESS_PORT"] == "9000"


def test_pod_follows_the_restricted_pod_security_profile(helm: Helm) -> None:
    pod = one(helm.template(), "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    # A read-only root still needs a writable scratch directory.
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert container["resources"]["requests"] == {"cpu": "50m", "memory": "128Mi"}
    assert container["resources"]["limits"] == {"memory": "256Mi"}


def test_operator_settings_become_coalmine_env_vars(helm: Helm, tmp_path: Path) -> None:
    values = {
        "operator": {
            "watchNamespaces": ["ml", "prod"],
            "defaultServingImage": "registry.local/serving:1.2",
            "defaultPrometheusAddress": "http://prom.monitoring:9090",
            "prometheusEndpoints": {"team-b": "http://prom.b:9090", "team-a": "https://prom.a"},
            "prometheusMaxTimeoutSeconds": 5,
            "allowPickle": True,
            "skopsTrustedTypes": ["a.A", "b.B"],
            "allowedImages": ["registry.local/team/", "registry.local/other"],
            "allowedServiceAccounts": ["model-reader"],
            "maxArtifactBytes": 1073741824,
            "scrapeIntervalSeconds": 15,
            "extraEnv": [{"name": "COALMINE_MAX_REPLICAS", "value": "20"}],
        }
    }
    objects = helm.template(values, tmp_path)
    container = container_of(objects)

    assert container["command"] == ["coalmine", "operator"]
    assert env(container) == {
        "COALMINE_NAMESPACES": "ml,prod",
        "COALMINE_DEFAULT_SERVING_IMAGE": "registry.local/serving:1.2",
        "COALMINE_DEFAULT_PROMETHEUS_ADDRESS": "http://prom.monitoring:9090",
        "COALMINE_PROMETHEUS_ENDPOINTS": "team-a=https://prom.a,team-b=http://prom.b:9090",
        "COALMINE_PROMETHEUS_MAX_TIMEOUT": "5",
        "COALMINE_ALLOW_PICKLE": "true",
        "COALMINE_SKOPS_TRUSTED_TYPES": "a.A,b.B",
        "COALMINE_ALLOWED_IMAGES": "registry.local/team/,registry.local/other",
        "COALMINE_ALLOWED_SERVICE_ACCOUNTS": "model-reader",
        "COALMINE_MAX_ARTIFACT_BYTES": "1073741824",
        "COALMINE_SCRAPE_INTERVAL_SECONDS": "15",
        "COALMINE_LIVENESS_PORT": "8081",
        "COALMINE_NOTIFICATION_WEBHOOKS": "[]",
        "COALMINE_NOTIFICATION_QUEUE_SIZE": "256",
        "COALMINE_NOTIFICATION_ATTEMPTS": "5",
        "COALMINE_METRICS_PORT": "8080",
        "POD_NAMESPACE": None,
        "POD_NAME": None,
        "COALMINE_LEADER_ELECTION": "true",
        "COALMINE_LEADER_ELECTION_LEASE_NAME": "demo-coalmine",
        "COALMINE_LEASE_DURATION_SECONDS": "12",
        "COALMINE_RENEW_DEADLINE_SECONDS": "8",
        "COALMINE_RETRY_PERIOD_SECONDS": "2",
        "COALMINE_MAX_REPLICAS": "20",
    }
    # The admission policy's settings come from the very same values, as CEL literals in
    # its own expressions (no params ConfigMap: kubernetes#133827, see the template).
    policy = one(objects, "ValidatingAdmissionPolicy")
    settings = {"allowPickle", "defaultImage", "trusted", "images", "accounts", "endpoints",
                "addresses"}  # fmt: skip
    literals = {
        v["name"]: json.loads(v["expression"])
        for v in policy["spec"]["variables"]
        if v["name"] in settings
    }
    assert literals == {
        "allowPickle": True,
        "defaultImage": "registry.local/serving:1.2",
        "trusted": ["a.A", "b.B"],
        "images": ["registry.local/team/", "registry.local/other"],
        "accounts": ["model-reader"],
        # Sorted names, and URLs without a trailing slash, as the operator compares them.
        "endpoints": ["default", "team-a", "team-b"],
        "addresses": ["http://prom.monitoring:9090", "https://prom.a", "http://prom.b:9090"],
    }
    assert "paramKind" not in policy["spec"]
    assert not [o for o in objects if o["kind"] == "ConfigMap"]
    binding = one(objects, "ValidatingAdmissionPolicyBinding")
    assert "paramRef" not in binding["spec"]
    (selector,) = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert selector["values"] == ["ml", "prod"]


def test_the_admission_policy_can_be_left_out(helm: Helm, tmp_path: Path) -> None:
    kinds = {o["kind"] for o in helm.template({"admissionPolicy": {"enabled": False}}, tmp_path)}
    assert "ValidatingAdmissionPolicy" not in kinds and "ConfigMap" not in kinds


def test_image_tag_defaults_to_the_app_version(helm: Helm, tmp_path: Path) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert container_of(helm.template())["image"] == f"coalmine/operator:{chart['appVersion']}"
    assert (
        container_of(helm.template({"image": {"tag": "dev"}}, tmp_path))["image"]
        == "coalmine/operator:dev"
    )


def test_cluster_role_is_the_operator_rules_file_verbatim(helm: Helm) -> None:
    objects = helm.template()
    binding = one(objects, "ClusterRoleBinding")
    account = one(objects, "ServiceAccount")

    assert one(objects, "ClusterRole")["rules"] == OPERATOR_RULES
    assert binding["roleRef"]["name"] == one(objects, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": "coalmine-system",
        }
    ]
    assert (
        one(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
        == (account["metadata"]["name"])
    )


def test_rbac_has_no_wildcards_no_secret_listing_and_no_deletes(helm: Helm, tmp_path: Path) -> None:
    namespaced = {"operator": {"watchNamespaces": ["ml"]}, "rbac": {"namespaced": True}}
    for objects in (helm.template(), helm.template(namespaced, tmp_path)):
        rules = [r for o in objects if o["kind"] in ("ClusterRole", "Role") for r in o["rules"]]
        assert rules
        for rule in rules:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(key, []), rule
            assert not {"delete", "deletecollection", "escalate", "bind", "impersonate"} & set(
                rule["verbs"]
            ), rule
        # Secrets only by name (the receipt keys): never listed or watched, so the operator
        # cannot sweep up the other Secrets of a namespace.
        secret_rules = [r for r in rules if "secrets" in r["resources"]]
        assert secret_rules == [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "patch"]}
        ]


def test_namespaced_mode_grants_roles_per_namespace_and_keeps_only_cluster_reads(
    helm: Helm, tmp_path: Path
) -> None:
    values = {"operator": {"watchNamespaces": ["ml", "prod"]}, "rbac": {"namespaced": True}}
    objects = helm.template(values, tmp_path)

    cluster_rules = one(objects, "ClusterRole")["rules"]
    assert {r for rule in cluster_rules for r in rule["resources"]} == CLUSTER_SCOPED
    for ns in ("ml", "prod"):
        role_rules = one(objects, "Role", ns)["rules"]
        assert sorted_rules(cluster_rules + role_rules) == sorted_rules(OPERATOR_RULES)
        assert one(objects, "RoleBinding", ns)["roleRef"]["kind"] == "Role"


def test_namespaced_mode_without_namespaces_is_refused(helm: Helm, tmp_path: Path) -> None:
    (tmp_path / "v.yaml").write_text(yaml.safe_dump({"rbac": {"namespaced": True}}))

    done = helm.run("template", "demo", str(CHART), "--values", str(tmp_path / "v.yaml"))

    assert done.returncode != 0
    assert "rbac.namespaced: true needs operator.watchNamespaces" in done.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"resources": {"limits": {"memory": 256}}},
            "at '/resources/limits/memory': got number, want string",
        ),
        (
            {"operator": {"allowPickle": "yes"}},
            "at '/operator/allowPickle': got string, want boolean",
        ),
        (
            {"operator": {"defaultPrometheusAddress": "prometheus:9090"}},
            "at '/operator/defaultPrometheusAddress': 'prometheus:9090' does not match pattern",
        ),
        (
            {"operator": {"prometheusEndpoints": {"default": "http://p:9090"}}},
            "at '/operator/prometheusEndpoints'",
        ),
        (
            {"operator": {"prometheusEndpoints": {"team-a": "prom:9090"}}},
            "at '/operator/prometheusEndpoints/team-a': 'prom:9090' does not match pattern",
        ),
        (
            {"operator": {"prometheusMaxTimeoutSeconds": 60}},
            "at '/operator/prometheusMaxTimeoutSeconds': maximum: got 60, want 30",
        ),
        (
            {"operator": {"watchNamespace": ["ml"]}},
            "additional properties 'watchNamespace' not allowed",
        ),
        (
            {"operator": {"livenessPort": 80}},
            "at '/operator/livenessPort': minimum: got 80, want 1,024",
        ),
        ({"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy'"),
    ],
)
def test_schema_rejects_bad_values_naming_the_field(
    helm: Helm, tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    (tmp_path / "v.yaml").write_text(yaml.safe_dump(values))

    done = helm.run("template", "demo", str(CHART), "--values", str(tmp_path / "v.yaml"))

    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr
    assert message in done.stderr


def test_pod_monitor_is_off_by_default(helm: Helm) -> None:
    assert "PodMonitor" not in {o["kind"] for o in helm.template()}


def test_pod_monitor_scrapes_every_model_pod_in_the_watched_namespaces(
    helm: Helm, tmp_path: Path
) -> None:
    values = {
        "operator": {"watchNamespaces": ["ml"]},
        "podMonitor": {"enabled": True, "labels": {"release": "kps"}},
    }
    monitor = one(helm.template(values, tmp_path), "PodMonitor")

    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["selector"] == {
        "matchExpressions": [{"key": "coalmine.dev/model-deployment", "operator": "Exists"}]
    }
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ml"]}
    assert monitor["spec"]["podMetricsEndpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "15s"}
    ]


def test_operator_metrics_port_is_set_opened_and_scraped_with_its_own_labels(
    helm: Helm, tmp_path: Path
) -> None:
    values = {
        "operator": {"metricsPort": 9100},
        "monitoring": {"operatorPodMonitor": {"enabled": True, "labels": {"release": "kps"}}},
        "networkPolicy": {"metricsFrom": [{"namespaceSelector": {"matchLabels": {"m": "1"}}}]},
    }
    objects = helm.template(values, tmp_path)
    container = container_of(objects)
    assert {"name": "metrics", "containerPort": 9100, "protocol": "TCP"} in container["ports"]
    assert env(container)["COALMINE_METRICS_PORT"] == "9100"

    monitors = [o for o in objects if o["kind"] == "PodMonitor"]
    (monitor,) = monitors
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"
    assert monitor["spec"]["podMetricsEndpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s", "honorLabels": True}
    ]
    policy = next(o for o in objects if o["kind"] == "NetworkPolicy")
    (metrics_rule,) = [r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == "metrics"]
    assert metrics_rule["from"] == [{"namespaceSelector": {"matchLabels": {"m": "1"}}}]


def test_dashboard_goes_where_the_grafana_sidecar_looks(helm: Helm, tmp_path: Path) -> None:
    assert "ConfigMap" not in {
        o["kind"] for o in helm.template() if "grafana_dashboard" in o["metadata"]["labels"]
    }
    values = {
        "monitoring": {
            "dashboard": {
                "enabled": True,
                "namespace": "monitoring",
                "labels": {"dashboards": "coalmine"},
                "annotations": {"grafana_folder": "ML"},
            }
        }
    }
    (board,) = [
        o for o in helm.template(values, tmp_path) if o["metadata"]["name"].endswith("-dashboard")
    ]
    assert board["metadata"]["namespace"] == "monitoring"
    # The values' labels are merged over the default, so the sidecar's default label stays too.
    labels = board["metadata"]["labels"]
    assert labels["dashboards"] == "coalmine" and labels["grafana_dashboard"] == "1"
    assert board["metadata"]["annotations"] == {"grafana_folder": "ML"}
    (text,) = board["data"].values()
    assert text == (CHART / "files" / "dashboard.json").read_text().rstrip("\n")


def test_crd_ships_in_crds_and_is_installed_with_the_chart(helm: Helm) -> None:
    crd = one(helm.template(None, None, "--include-crds"), "CustomResourceDefinition")

    assert crd["metadata"]["name"] == "modeldeployments.coalmine.dev"


def test_notes_tell_the_user_what_to_do_next(helm: Helm) -> None:
    done = helm.run("install", "demo", str(CHART), "-n", "coalmine-system", "--dry-run=client")

    assert done.returncode == 0, done.stderr
    notes = done.stdout.split("NOTES:", 1)[1]
    for step in (
        "kubectl -n coalmine-system rollout status deployment/demo-coalmine",
        "kubectl apply -f",
        "kubectl get mdeploy -w",
        "kubectl coalmine status <name> --watch",
        "examples/rbac-user.yaml",
    ):
        assert step in notes


def container_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def env(container: dict[str, Any]) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in container["env"]}


def sorted_rules(rules: list[dict[str, Any]]) -> list[str]:
    return sorted(yaml.safe_dump(rule, sort_keys=True) for rule in rules)
