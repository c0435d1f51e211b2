"""Notification webhooks in the chart, rendered by a real helm: what the operator reads, how
secrets reach it (never in the settings' text), the egress they open, and what is refused.
The operator's own settings parse the rendered value (the same model the process uses)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from coalmine.settings import OperatorSettings
from tests.charts.helm import CHART, Helm
from tests.charts.test_chart import container_of
from tests.charts.test_chart_networkpolicy import egress_ports, policies

HOOKS = {
    "notifications": {
        "webhooks": [
            {"url": "https://hooks.example/coalmine", "format": "cloudevents",
             "events": ["promoted", "rolledback"],
             "authSecretRef": {"name": "hook-auth", "key": "authorization"}},
            {"urlSecretRef": {"name": "slack-hook", "key": "url"}, "format": "slack"},
            {"url": "http://receiver.ops:8080/x", "timeoutSeconds": 2},
        ],
        "attempts": 3,
    }
}  # fmt: skip


def test_webhooks_reach_the_operator_with_secrets_as_env_references(
    helm: Helm, tmp_path: Path
) -> None:
    container = container_of(helm.template(HOOKS, tmp_path))
    env = {e["name"]: e for e in container["env"]}
    text = env["COALMINE_NOTIFICATION_WEBHOOKS"]["value"]
    assert "hook-auth" not in text and "slack-hook" not in text
    settings = OperatorSettings(
        notification_webhooks=json.loads(text),
        notification_attempts=env["COALMINE_NOTIFICATION_ATTEMPTS"]["value"],
    )
    first, slack, plain = settings.notification_webhooks
    assert (first.format, first.events, first.auth_header_env) == (
        "cloudevents", ["promoted", "rolledback"], "COALMINE_WEBHOOK_0_AUTH",
    )  # fmt: skip
    assert (slack.url, slack.url_env) == (None, "COALMINE_WEBHOOK_1_URL")
    assert (plain.format, plain.timeout_seconds) == ("json", 2.0)
    assert settings.notification_attempts == 3
    assert env["COALMINE_WEBHOOK_0_AUTH"]["valueFrom"] == {
        "secretKeyRef": {"name": "hook-auth", "key": "authorization"}
    }
    assert env["COALMINE_WEBHOOK_1_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "slack-hook", "key": "url"}
    }


def test_egress_opens_each_webhooks_port(helm: Helm, tmp_path: Path) -> None:
    policy = policies(helm.template(HOOKS, tmp_path))[("coalmine-system", "demo-coalmine-operator")]
    # 443 from the https URL and for the Slack URL from a Secret; 8080 from the plain one.
    assert egress_ports(policy)[-1] == {(443, "TCP"), (8080, "TCP")}
    default = policies(helm.template())[("coalmine-system", "demo-coalmine-operator")]
    assert len(egress_ports(default)) == len(egress_ports(policy)) - 1  # none without hooks


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        ({"url": "ftp://x"}, "at '/notifications/webhooks/0/url'"),
        ({"format": "json"}, "at '/notifications/webhooks/0'"),  # no url at all
        ({"url": "https://x", "format": "teams"}, "at '/notifications/webhooks/0/format'"),
        ({"url": "https://x", "events": ["deployed"]}, "at '/notifications/webhooks/0/events/0'"),
    ],
)
def test_schema_refuses_bad_webhooks_naming_the_field(
    helm: Helm, tmp_path: Path, hook: dict[str, object], message: str
) -> None:
    (tmp_path / "v.yaml").write_text(yaml.safe_dump({"notifications": {"webhooks": [hook]}}))
    done = helm.run("template", "demo", str(CHART), "--values", str(tmp_path / "v.yaml"))
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_lint_strict_passes_with_webhooks(helm: Helm, tmp_path: Path) -> None:
    (tmp_path / "v.yaml").write_text(yaml.safe_dump(HOOKS))
    done = helm.run("lint", "--strict", str(CHART), "--values", str(tmp_path / "v.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
