"""The chart's alerts: the PrometheusRule helm renders, checked and unit-tested by a real
promtool (prometheusrule_test.yaml: each alert firing and not firing on input series)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.charts.helm import Helm
from tests.charts.promtool import promtool_binary, rendered_rules, run_promtool

CASES = Path(__file__).with_name("prometheusrule_test.yaml")
ALERTS = {
    "CoalmineRollback",
    "CoalmineAnalysisInconclusive",
    "CoalmineOperatorNotTicking",
    "CoalmineFeedbackJoinRateLow",
}


@pytest.fixture(scope="module")
def promtool() -> Path:
    return promtool_binary()


def _cases_for(rules: Path, tmp: Path) -> Path:
    cases = yaml.safe_load(CASES.read_text())
    cases["rule_files"] = [str(rules)]
    path = tmp / "cases.yaml"
    path.write_text(yaml.safe_dump(cases, sort_keys=False))
    return path


def test_the_rule_is_off_by_default(helm: Helm) -> None:
    assert "PrometheusRule" not in {o["kind"] for o in helm.template()}


def test_every_alert_fires_when_it_should_and_only_then(
    helm: Helm, promtool: Path, tmp_path: Path
) -> None:
    rules = rendered_rules(helm, tmp_path, {"monitoring": {"prometheusRule": {"enabled": True}}})
    groups = yaml.safe_load(rules.read_text())["groups"]
    assert {rule["alert"] for group in groups for rule in group["rules"]} == ALERTS
    tested = {
        test["alertname"]
        for case in yaml.safe_load(CASES.read_text())["tests"]
        for test in case["alert_rule_test"]
    }
    assert tested == ALERTS

    checked = run_promtool(promtool, "check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 4 rules found" in checked.stdout

    done = run_promtool(promtool, "test", "rules", str(_cases_for(rules, tmp_path)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_thresholds_come_from_the_values(helm: Helm, promtool: Path, tmp_path: Path) -> None:
    """At a 40% floor, iris' 50% join rate is fine: the case expecting its alert now fails (and
    the others still pass), so the value really reaches the expression."""
    values = {"monitoring": {"prometheusRule": {"enabled": True, "feedbackJoinRateMin": 0.4}}}
    rules = rendered_rules(helm, tmp_path, values)

    done = run_promtool(promtool, "test", "rules", str(_cases_for(rules, tmp_path)))

    assert done.returncode != 0
    failures = [line for line in (done.stdout + done.stderr).splitlines() if "alertname:" in line]
    assert len(failures) == 1 and "CoalmineFeedbackJoinRateLow, time: 45m" in failures[0], failures


def test_alert_labels_and_rule_labels_are_added(helm: Helm, tmp_path: Path) -> None:
    values = {
        "monitoring": {
            "prometheusRule": {
                "enabled": True,
                "labels": {"release": "kps"},
                "alertLabels": {"team": "ml"},
            }
        }
    }
    (rule,) = [o for o in helm.template(values, tmp_path) if o["kind"] == "PrometheusRule"]
    assert rule["metadata"]["labels"]["release"] == "kps"
    for alert in rule["spec"]["groups"][0]["rules"]:
        assert alert["labels"]["team"] == "ml" and alert["labels"]["severity"]
