"""The examples validate, and every invalid manifest is rejected offline with a message that
names the field (the same files are applied to a real API server in the integration tier)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from coalmine.api.validate import check_manifest, manifests_in

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted(
    p for p in (ROOT / "examples").glob("*.yaml") if "kind: ModelDeployment" in p.read_text()
)
INVALID = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))


def expectation(path: Path, key: str) -> str | None:
    for line in path.read_text().splitlines():
        if line.startswith(f"# {key}: "):
            return line.removeprefix(f"# {key}: ")
    return None


def is_update_case(path: Path) -> bool:
    return expectation(path, "update") is not None


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid(path: Path) -> None:
    manifests = list(manifests_in(path.read_text()))
    assert manifests, f"{path.name} holds no ModelDeployment"
    for manifest in manifests:
        assert check_manifest(manifest, path.name) == []


@pytest.mark.parametrize(
    "path", [p for p in INVALID if not is_update_case(p)], ids=lambda p: p.stem
)
def test_invalid_manifest_is_rejected_offline_naming_the_field(path: Path) -> None:
    expected = expectation(path, "expect-offline") or expectation(path, "expect")
    assert expected, f"{path.name} has no '# expect:' line"
    problems = check_manifest(yaml.safe_load(path.read_text()), path.name)
    rendered = "\n".join(str(p) for p in problems)
    assert problems, f"{path.name} was accepted"
    assert expected in rendered
    assert "spec." in rendered, "the message must name the field"


@pytest.mark.parametrize("path", [p for p in INVALID if is_update_case(p)], ids=lambda p: p.stem)
def test_transition_rule_cases_are_individually_valid(path: Path) -> None:
    # Immutability needs the stored object (CEL oldSelf), so only the API server can enforce
    # it; offline, each document on its own must be valid, or the case would prove nothing.
    old, new = list(manifests_in(path.read_text()))
    assert check_manifest(old, path.name) == []
    assert check_manifest(new, path.name) == []
    assert old["spec"] != new["spec"]


def test_every_cel_rule_has_an_invalid_manifest() -> None:
    from coalmine.api.crdgen import crd

    messages = _cel_messages(crd())
    covered = {expectation(p, "expect") for p in INVALID}
    for message in messages:
        assert any(c and c in message for c in covered), f"no invalid manifest for: {message}"


def _cel_messages(node: object) -> list[str]:
    if isinstance(node, list):
        return [m for item in node for m in _cel_messages(item)]
    if not isinstance(node, dict):
        return []
    found = [rule["message"] for rule in node.get("x-kubernetes-validations", [])]
    return found + [m for value in node.values() for m in _cel_messages(value)]
