"""The chart ships the generated CRD; a stale copy would install an outdated schema."""

from __future__ import annotations

from pathlib import Path

from coalmine.api.crdgen import render

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "crds" / "modeldeployment.yaml"
CHART_COPY = ROOT / "charts" / "coalmine" / "crds" / "modeldeployment.yaml"


def test_chart_crd_is_a_byte_for_byte_copy_of_the_generated_crd() -> None:
    assert CHART_COPY.read_text() == GENERATED.read_text(), (
        f"{CHART_COPY.relative_to(ROOT)} differs from {GENERATED.relative_to(ROOT)}: run `make crd`"
    )


def test_chart_crd_matches_the_api_models() -> None:
    assert CHART_COPY.read_text() == render(), "the API models changed: run `make crd`"
