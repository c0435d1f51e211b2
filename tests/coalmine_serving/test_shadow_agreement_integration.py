"""The agreement check end to end on real components: a stable ``coalmine-serve`` mirrors to
two real canaries in turn (one the same model, one answering the other class), a real
Prometheus scrapes stable, and the operator's own query and judge read the comparisons,
each canary's under its own revision."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest

from coalmine.analysis import Scope, SideScope, measure_checks
from coalmine.analysis.prometheus import PrometheusProvider
from coalmine.api.checks import Check
from coalmine.rollout.judge import judge
from coalmine.rollout.verdicts import Judging
from coalmine_serving import contract as c
from tests.coalmine_serving import models
from tests.coalmine_serving.http.test_app import _infer_body
from tests.coalmine_serving.test_shadow_mirror_integration import (
    ROWS,
    _canary,
    _flipped_classifier,
    _point,
    _settled,
    _stable,
)

pytestmark = pytest.mark.integration
AGREEMENT = Check.model_validate({"name": "agreement", "agreement": {"min": 0.9}})


def _send(stable: models.ServerProcess, n: int) -> None:
    with httpx.Client(timeout=10) as client:
        for i in range(n):
            body = _infer_body([ROWS[i % len(ROWS)]])
            assert client.post(f"{stable.url}/v2/models/iris/infer", json=body).status_code == 200


def _mirror_to(prometheus, stable, canary, revision: str, config, n: int) -> None:  # type: ignore[no-untyped-def]
    """Mirror ``n`` requests to ``canary`` under ``revision``, its series scraped once at
    its first counts first (``increase`` needs a sample before the bulk)."""
    _point(config, canary.url, revision=revision)
    _send(stable, 5)
    _settled(stable, 5, canary_revision=revision)
    series = f'{c.SHADOW_COMPARED_TOTAL.name}{{canary_revision="{revision}",result="agree"}}'
    prometheus.wait_for(series)
    _send(stable, n)
    _settled(stable, n + 5, canary_revision=revision)


def _judged(prometheus, revision: str):  # type: ignore[no-untyped-def]
    canary = SideScope("iris", "2", "canary", namespace="", namespace_label="", revision=revision)
    scope = Scope(canary=canary, stable=None, window=timedelta(minutes=2))
    with PrometheusProvider(prometheus.url, timedelta(seconds=5)) as provider:
        (measured,) = measure_checks(provider, scope, [AGREEMENT])
    return measured, judge(AGREEMENT, measured, Judging(min_samples=50))


def test_the_operator_judges_each_canary_on_the_comparisons_stable_exports(  # type: ignore[no-untyped-def]
    prometheus, artifacts, tmp_path
) -> None:
    config = tmp_path / "mirror.json"
    config.write_text("{}")
    procs = {
        "stable": _stable(artifacts["onnx_clf"], tmp_path, config),
        # The last --revision wins: each canary's series carry the revision it is judged as
        # (the freshness guard reads the canary's own request counter).
        "same": _canary(artifacts["onnx_clf"], tmp_path, "--revision", "r-same"),
        "flipped": _canary(_flipped_classifier(tmp_path), tmp_path, "--revision", "r-flipped"),
    }
    with models.all_ready(procs):
        stable = procs["stable"]
        prometheus.set_targets([f"127.0.0.1:{p.port}" for p in procs.values()])
        _mirror_to(prometheus, stable, procs["same"], "r-same", config, 150)
        _mirror_to(prometheus, stable, procs["flipped"], "r-flipped", config, 150)
        total = f"sum({c.SHADOW_COMPARED_TOTAL.name}{{canary_revision=~'r-.*'}})"
        prometheus.wait_for(f"{total} >= 310")
        time.sleep(1)
        same, same_verdict = _judged(prometheus, "r-same")
        flipped, flipped_verdict = _judged(prometheus, "r-flipped")
        _, nothing_verdict = _judged(prometheus, "r-never-mirrored")

    assert same.canary.samples is not None and same.canary.samples >= 150
    assert same.canary.value == 1.0 and same_verdict.verdict == "pass", same_verdict
    assert flipped_verdict.verdict == "fail", flipped_verdict
    assert flipped.canary.value is not None and flipped.canary.value < 0.1
    assert "compared" in flipped_verdict.reason
    assert nothing_verdict.verdict == "inconclusive", nothing_verdict  # no data: never a pass
