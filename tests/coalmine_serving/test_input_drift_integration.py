"""Input drift end to end on real components: the operator's flag starts real servers, a
real Prometheus scrapes them, and the operator's own query and judge read what they export."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from coalmine import manifests
from coalmine.analysis import Scope, SideScope, measure_checks
from coalmine.analysis.prometheus import PrometheusProvider
from coalmine.api import ModelDeploymentSpec, RevisionRef
from coalmine.rollout.judge import judge
from coalmine.rollout.verdicts import Judging
from coalmine.settings import OperatorSettings
from coalmine_serving import contract as c
from tests.coalmine_serving import models
from tests.coalmine_serving.http.test_app import _infer_body

pytestmark = pytest.mark.integration

INPUTS = [
    {"name": "sepal_length", "index": 0, "edges": [0.5, 1.0]},
    {"name": "petal_width", "index": 3, "edges": [0.5]},
]
SPEC = ModelDeploymentSpec.model_validate(
    {
        "model": {"name": "iris", "version": "v2", "uri": "file:///m.onnx", "format": "onnx"},
        "canary": {
            "steps": [{"weight": 10}],
            "analysis": {"checks": [{"name": "inputs", "drift": {"max": 0.2, "inputs": INPUTS}}]},
        },
    }
)


def _operator_flag(variant: manifests.Variant, version: str) -> list[str]:
    """The --input-features flag exactly as the operator writes it into the pod spec."""
    revision = RevisionRef(revision="r", version=version, uri="file:///m.onnx", format="onnx")
    args = manifests.server_args(SPEC, variant, revision, OperatorSettings())
    at = args.index("--input-features")
    return args[at : at + 2]


@pytest.fixture
def servers(artifacts, tmp_path: Path) -> Iterator[dict[str, models.ServerProcess]]:  # type: ignore[no-untyped-def]
    procs = {
        variant: models.ServerProcess(
            artifacts["onnx_clf"], tmp_path / f"{variant}.log", "--variant", variant,
            "--model-version", version, *_operator_flag(variant, version),
        )
        for variant, version in (("stable", "v1"), ("canary", "v2"))
    }  # fmt: skip
    with models.all_ready(procs):
        yield procs


def _send(server: models.ServerProcess, sepal_lengths: list[float]) -> None:
    """One batch (numpy's path) and single rows (the Python path) with these sepal lengths."""
    rows = [[s, 0.1, 0.1, 0.2] for s in sepal_lengths]
    url = f"{server.url}/v2/models/iris/infer"
    assert httpx.post(url, json=_infer_body(rows[:80])).status_code == 200
    for row in rows[80:]:
        assert httpx.post(url, json=_infer_body([row])).status_code == 200


def test_the_operator_reads_the_input_buckets_the_servers_export(prometheus, servers) -> None:  # type: ignore[no-untyped-def]
    stable, canary = servers["stable"], servers["canary"]
    assert _operator_flag("stable", "v1") == _operator_flag("canary", "v2")
    prometheus.set_targets([f"127.0.0.1:{stable.port}", f"127.0.0.1:{canary.port}"])
    bucket = c.INPUT_FEATURE.series("bucket")
    # A scrape at 0 before any traffic, so increase() over the window counts every value.
    for variant in ("stable", "canary"):
        prometheus.wait_for(f'{bucket}{{variant="{variant}",feature="petal_width",le="+Inf"}}')

    _send(stable, [0.3] * 50 + [0.8] * 50)  # half below 0.5, half in (0.5, 1.0]
    _send(canary, [0.8] * 90 + [2.0] * 10)  # the canary's inputs moved up
    count = c.INPUT_FEATURE.series("count")
    for variant in ("stable", "canary"):
        prometheus.wait_for(f'{count}{{variant="{variant}",feature="sepal_length"}} >= 100')

    scope = Scope(
        canary=SideScope("iris", "v2", "canary", namespace="", namespace_label=""),
        stable=SideScope("iris", "v1", "stable", namespace="", namespace_label=""),
        window=timedelta(minutes=1),
    )
    check = SPEC.canary.analysis.checks[0]
    with PrometheusProvider(prometheus.url, timedelta(seconds=5)) as provider:
        (measured,) = measure_checks(provider, scope, [check])

    assert measured.stable is not None
    shares = {}
    for which, side in (("canary", measured.canary), ("stable", measured.stable)):
        assert side.error is None and [name for name, _ in side.features] == [
            "sepal_length",
            "petal_width",
        ]
        for name, buckets in side.features:
            total = sum(n for _, n in buckets)
            # increase() extrapolates a little past the last scrape, alike for every bucket.
            assert total >= 100
            shares[which, name] = {le: round(n / total, 6) for le, n in buckets}
    assert shares["stable", "sepal_length"] == {"0.5": 0.5, "1.0": 0.5, "+Inf": 0.0}
    assert shares["canary", "sepal_length"] == {"0.5": 0.0, "1.0": 0.9, "+Inf": 0.1}
    assert shares["canary", "petal_width"] == shares["stable", "petal_width"]
    assert shares["canary", "petal_width"] == {"0.5": 1.0, "+Inf": 0.0}

    verdict = judge(check, measured, Judging(min_samples=50))
    assert verdict.verdict == "fail" and verdict.feature == "sepal_length"
    assert verdict.reason.startswith("input drift: feature sepal_length psi ")
