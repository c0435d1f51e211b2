"""Clean data before statistics, on real components: real servers on real sockets, a real
Prometheus scraping them (every second), and the operator's own queries and judges.

* a scrape target that stopped holds the canary (inconclusive), though ``increase()`` over
  its earlier good samples would still pass;
* a retried canary starts from zero counts instead of its predecessor's errors;
* a flood of 503s is reported as saturation, not as model errors.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from coalmine.analysis import Scope, SideScope, measure_checks
from coalmine.analysis.measure import error_rate
from coalmine.analysis.prometheus import PrometheusProvider
from coalmine.analysis.promql import newest_sample_age
from coalmine.api import Check
from coalmine.api.canary import CanaryStrategy, Step
from coalmine.rollout.judge import judge
from coalmine.rollout.policy import analysis_window
from coalmine.rollout.verdicts import Judging
from coalmine_serving import contract as c
from tests.coalmine_serving import models
from tests.coalmine_serving.http.test_app import ROW, _infer_body

pytestmark = pytest.mark.integration

REQUESTS = c.REQUESTS_TOTAL.name
ERRORS = Check.model_validate({"name": "errors", "errorRate": {"max": 0.05, "vsStable": {}}})
SATURATION = Check.model_validate({"name": "saturation", "saturation": {"max": 0.05}})
STABLE = SideScope("iris", "v1", "stable", namespace="", namespace_label="", revision="s1")
CANARY = SideScope("iris", "v2", "canary", namespace="", namespace_label="", revision="r1")
FRESH = timedelta(seconds=3)  # three missed scrapes at the fixture's 1s interval


def _server(artifacts, tmp_path: Path, side: SideScope, *extra: str) -> models.ServerProcess:  # type: ignore[no-untyped-def]
    return models.ServerProcess(
        artifacts["onnx_clf"], tmp_path / f"{side.variant}-{time.monotonic_ns()}.log",
        "--variant", side.variant, "--model-version", side.version, "--revision", side.revision,
        *extra,
    )  # fmt: skip


def _target(server: models.ServerProcess) -> str:
    return f"127.0.0.1:{server.port}"


def _scraped_at_zero(prometheus, server: models.ServerProcess) -> None:  # type: ignore[no-untyped-def]
    """A scrape before any traffic, so increase() over the window counts every request."""
    prometheus.wait_for(f'{REQUESTS}{{instance="{_target(server)}",outcome="success"}}')


def _send(server: models.ServerProcess, n: int) -> list[int]:
    url = f"{server.url}/v2/models/iris/infer"
    return [httpx.post(url, json=_infer_body([ROW])).status_code for _ in range(n)]


def _scraped(prometheus, server: models.ServerProcess, outcome: str, n: int) -> None:  # type: ignore[no-untyped-def]
    prometheus.wait_for(
        f'{REQUESTS}{{instance="{_target(server)}",outcome="{outcome}"}} >= {n}', timeout=30
    )


def _measure(prometheus, scope: Scope, *checks: Check):  # type: ignore[no-untyped-def]
    with PrometheusProvider(prometheus.url, timedelta(seconds=5)) as provider:
        return measure_checks(provider, scope, list(checks))


def test_a_stale_scrape_target_holds_the_canary(prometheus, artifacts, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    procs = {"stable": _server(artifacts, tmp_path, STABLE)}
    procs["canary"] = _server(artifacts, tmp_path, CANARY)
    with models.all_ready(procs):
        stable, canary = procs["stable"], procs["canary"]
        prometheus.set_targets([_target(stable), _target(canary)])
        for server in (stable, canary):
            _scraped_at_zero(prometheus, server)
            assert set(_send(server, 60)) == {200}
            _scraped(prometheus, server, "success", 60)
        scope = Scope(CANARY, STABLE, timedelta(minutes=1), max_sample_age=FRESH)
        (fresh,) = _measure(prometheus, scope, ERRORS)
        assert judge(ERRORS, fresh, Judging(min_samples=50)).verdict == "pass"

        canary.stop()  # its scrapes now fail: the samples stop advancing
        deadline = time.monotonic() + 20
        while prometheus.query(newest_sample_age(CANARY)) and time.monotonic() < deadline:
            time.sleep(0.25)
        (stale,) = _measure(prometheus, scope, ERRORS)
        verdict = judge(ERRORS, stale, Judging(min_samples=50))
        assert verdict.verdict == "inconclusive", verdict.reason
        assert verdict.reason == "canary stale: no current sample of the canary's request counter"

        # What the guard protects against: the same window still holds the good counts.
        with PrometheusProvider(prometheus.url, timedelta(seconds=5)) as provider:
            unguarded = error_rate(provider, CANARY, scope.range, ERRORS)
        assert unguarded.errors == 0 and (unguarded.samples or 0) >= 60


def test_a_retried_canary_starts_from_zero_counts(prometheus, artifacts, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    procs = {"stable": _server(artifacts, tmp_path, STABLE)}
    procs["failed"] = _server(artifacts, tmp_path, CANARY, "--fault-error-rate", "1.0")
    with models.all_ready(procs):
        stable, failed = procs["stable"], procs["failed"]
        prometheus.set_targets([_target(stable), _target(failed)])
        _scraped_at_zero(prometheus, stable)
        _scraped_at_zero(prometheus, failed)
        assert set(_send(failed, 60)) == {500}
        _scraped(prometheus, failed, "server_error", 60)
        failed.stop()  # rolled back: its pods are gone before the retry starts
        time.sleep(2)

        # The retry: the same version and the same revision (the spec did not change).
        started = datetime.now(UTC)
        procs["retried"] = retried = _server(artifacts, tmp_path, CANARY)
        retried.wait_ready()
        prometheus.set_targets([_target(stable), _target(retried)])
        _scraped_at_zero(prometheus, retried)
        assert set(_send(retried, 60)) == {200}
        _scraped(prometheus, retried, "success", 60)

        now = datetime.now(UTC)
        strategy = CanaryStrategy(steps=[Step(weight=10)])
        check = Check.model_validate({"name": "errors", "errorRate": {"max": 0.05}})
        window = analysis_window(strategy, started, now, canary_started_at=started)
        (own,) = _measure(prometheus, Scope(CANARY, STABLE, window, max_sample_age=FRESH), check)
        assert own.canary.errors == 0 and 60 <= (own.canary.samples or 0) < 70
        assert judge(check, own, Judging(min_samples=50)).verdict == "pass"

        # Without the bound at the canary's start the retry inherits its predecessor's errors;
        # and the revision label scopes too: another revision of v2 has no counts at all.
        inherited_window = analysis_window(strategy, started, now)
        inherited_scope = Scope(CANARY, STABLE, inherited_window, max_sample_age=FRESH)
        (inherited,) = _measure(prometheus, inherited_scope, check)
        assert (inherited.canary.errors or 0) >= 60
        other = Scope(
            SideScope("iris", "v2", "canary", namespace="", namespace_label="", revision="r0"),
            STABLE,
            inherited_window,
            max_sample_age=timedelta(minutes=5),
        )
        (none,) = _measure(prometheus, other, check)
        assert none.canary.stale is not None  # no series of revision r0 at all


def test_a_flood_of_503s_is_saturation_not_errors(prometheus, artifacts, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    procs = {"stable": _server(artifacts, tmp_path, STABLE)}
    procs["canary"] = _server(
        artifacts, tmp_path, CANARY, "--max-concurrency", "2", "--fault-latency-seconds", "0.05"
    )
    with models.all_ready(procs):
        stable, canary = procs["stable"], procs["canary"]
        prometheus.set_targets([_target(stable), _target(canary)])
        _scraped_at_zero(prometheus, stable)
        _scraped_at_zero(prometheus, canary)
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda _: _send(canary, 1)[0], range(400)))
        assert set(codes) == {200, 503} and codes.count(200) >= 20, codes.count(200)
        assert set(_send(stable, 100)) == {200}
        _scraped(prometheus, canary, "shed", codes.count(503))
        _scraped(prometheus, stable, "success", 100)

        scope = Scope(CANARY, STABLE, timedelta(minutes=1), max_sample_age=FRESH)
        errors, saturation = _measure(prometheus, scope, ERRORS, SATURATION)
        judging = Judging(min_samples=20)
        errors_verdict = judge(ERRORS, errors, judging)
        assert errors_verdict.verdict == "pass", errors_verdict.reason
        # increase() extrapolates a little past the last scrape: counts within 10%.
        served, shed = codes.count(200), codes.count(503)
        assert errors.canary.errors == 0
        assert served <= (errors.canary.samples or 0) <= served * 1.1
        verdict = judge(SATURATION, saturation, judging)
        assert verdict.verdict == "fail", verdict.reason
        assert verdict.reason.startswith("saturation ") and "refused for load" in verdict.reason
        assert verdict.value is not None and abs(verdict.value - shed / len(codes)) < 0.02
        assert verdict.stable_value == 0
