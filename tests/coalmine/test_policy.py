"""The operator's settings are the ceiling: each thing a ModelDeployment may not turn on."""

from __future__ import annotations

from typing import Any

import pytest

from coalmine.api import ModelDeploymentSpec
from coalmine.policy import image_allowed, refusals
from coalmine.settings import OperatorSettings

MODEL = {"name": "iris", "version": "v1", "uri": "file:///m.skops", "format": "skops"}
SETTINGS = OperatorSettings(
    default_serving_image="reg.example/coalmine/serving:0.1.0",
    skops_trusted_types=["a.A", "b.B"],
    allowed_images=["reg.example/team/serving", "mirror.example/ml/", "other.example/x:2"],
    allowed_service_accounts=["model-reader"],
)


def _spec(model: dict[str, Any] | None = None, **runtime: Any) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {"model": {**MODEL, **(model or {})}, "runtime": runtime}
    )


def test_a_spec_within_the_policy_is_not_refused() -> None:
    spec = _spec({"trustedTypes": ["b.B"]}, image="reg.example/team/serving:2",
                 serviceAccountName="model-reader")  # fmt: skip
    assert refusals(spec, SETTINGS) == []
    assert refusals(_spec(), OperatorSettings()) == []


def test_joblib_needs_the_operator_allow_pickle() -> None:
    spec = _spec({"format": "joblib", "uri": "file:///m.joblib"})
    (message,) = refusals(spec, SETTINGS)
    assert message == (
        "spec.model.format: joblib is refused: loading a pickle runs code from the artifact, "
        "and the operator's allowPickle is false (use onnx or skops)"
    )
    assert refusals(spec, SETTINGS.model_copy(update={"allow_pickle": True})) == []


def test_trusted_types_may_narrow_but_never_widen() -> None:
    (message,) = refusals(_spec({"trustedTypes": ["b.B", "os.system", "c.C"]}), SETTINGS)
    assert message == (
        "spec.model.trustedTypes: os.system, c.C not in the operator's skopsTrustedTypes; "
        "a ModelDeployment may only narrow that list"
    )


@pytest.mark.parametrize(
    ("image", "allowed"),
    [
        ("reg.example/coalmine/serving:0.1.0", True),  # the default, always
        ("reg.example/team/serving", True),  # the repository itself
        ("reg.example/team/serving:2", True),  # any tag of it
        ("reg.example/team/serving@sha256:" + "a" * 64, True),  # any digest of it
        ("reg.example/team/serving-evil:1", False),  # a longer name is another repository
        ("reg.example/team/servingx", False),
        ("mirror.example/ml/anything:1", True),  # under a prefix ending in /
        ("mirror.example/mlx/anything:1", False),
        ("other.example/x:2", True),  # an exact reference
        ("other.example/x:3", False),
        ("reg.example/coalmine/serving:0.2.0", False),  # the default's other tags are not
    ],
)
def test_images_come_from_the_operator_allowlist(image: str, allowed: bool) -> None:
    assert image_allowed(image, SETTINGS) is allowed
    found = refusals(_spec(image=image), SETTINGS)
    expected = [] if allowed else [
        f"spec.runtime.image: {image} is not the operator's defaultServingImage and matches "
        "no entry of its allowedImages"
    ]  # fmt: skip
    assert found == expected


def test_service_accounts_come_from_the_operator_allowlist() -> None:
    assert refusals(_spec(serviceAccountName="model-reader"), SETTINGS) == []
    assert refusals(_spec(serviceAccountName="cloud-admin"), SETTINGS) == [
        "spec.runtime.serviceAccountName: cloud-admin is not in the operator's "
        "allowedServiceAccounts"
    ]
