"""The committed CRD is generated from the models and is a structural schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coalmine.api.crdgen import crd, render

ROOT = Path(__file__).resolve().parents[3]


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    if isinstance(node, list):
        return [hit for i, item in enumerate(node) for hit in walk(item, f"{path}[{i}]")]
    if not isinstance(node, dict):
        return []
    found = [(path, node)]
    for key, value in node.items():
        found += walk(value, f"{path}.{key}")
    return found


def schema() -> dict[str, Any]:
    return crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def test_committed_crd_is_not_stale() -> None:
    committed = (ROOT / "crds" / "modeldeployment.yaml").read_text()
    assert committed == render(), "crds/modeldeployment.yaml is stale: run `coalmine crd --write`"


def test_schema_is_structural() -> None:
    for path, node in walk(schema()):
        assert "$ref" not in node, path
        assert "title" not in node, path
        assert "additionalProperties" not in node or "properties" not in node, path
        if "properties" in node:
            assert node.get("type") == "object", path
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string"), f"{path}: anyOf only for quantities"


def test_defaults_are_written_as_users_write_them() -> None:
    steps = schema()["properties"]["spec"]["properties"]["canary"]["properties"]["steps"]
    assert steps["items"]["properties"]["pause"]["default"] == "1m"
    assert steps["items"]["properties"]["pause"]["pattern"].startswith("^(")


def test_printer_columns_answer_where_is_my_rollout() -> None:
    version = crd()["spec"]["versions"][0]
    names = [c["name"] for c in version["additionalPrinterColumns"]]
    assert names[:6] == ["Phase", "Stable", "Canary", "Weight", "Step", "Age"]
    assert version["subresources"]["status"] == {}
    assert "mdep" in crd()["spec"]["names"]["shortNames"]


def test_the_scale_subresource_resizes_the_stable_pods_an_autoscaler_watches() -> None:
    version = crd()["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.runtime.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    spec = schema()["properties"]["spec"]["properties"]
    # spec.runtime defaults to {}, so its replicas default (1) exists even when left out.
    assert spec["runtime"]["default"] == {}
    assert spec["runtime"]["properties"]["replicas"]["default"] == 1


def test_strings_and_lists_in_cel_rules_are_bounded() -> None:
    # The API server estimates CEL cost from maxLength/maxItems; unbounded inputs make it
    # refuse the CRD, so every list a rule iterates must be bounded.
    spec = schema()["properties"]["spec"]["properties"]
    assert spec["canary"]["properties"]["steps"]["maxItems"] <= 20
    assert spec["canary"]["properties"]["analysis"]["properties"]["checks"]["maxItems"] <= 32
    assert spec["model"]["properties"]["uri"]["maxLength"] <= 4096


def test_exclusive_bounds_use_the_openapi_v3_0_form() -> None:
    # The API server's schema type has `exclusiveMinimum` as a boolean; a number there makes
    # the whole CRD fail to decode.
    for path, node in walk(schema()):
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            if key in node:
                assert node[key] is True, path
                assert ("minimum" if key == "exclusiveMinimum" else "maximum") in node, path
