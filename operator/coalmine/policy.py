"""The operator's settings are the ceiling: what a ModelDeployment may not turn on.

A static CRD rule cannot know the operator's settings, so these checks run in the operator
on every tick, before anything is applied: a spec that asks for more than the operator allows
gets ``Ready=False, reason InvalidSpec`` with a message naming the field, and no pod changes.

    format: joblib             only with allowPickle
    trustedTypes               only a subset of skopsTrustedTypes (narrow, never widen)
    runtime.image              the default serving image, or one matching allowedImages
    runtime.serviceAccountName only a name in allowedServiceAccounts
"""

from __future__ import annotations

from coalmine.api import ModelDeploymentSpec
from coalmine.api.model import ModelFormat
from coalmine.settings import OperatorSettings


def refusals(spec: ModelDeploymentSpec, settings: OperatorSettings) -> list[str]:
    """Each way ``spec`` exceeds the operator's policy, as ``spec.<field>: <why>``."""
    found = [
        _pickle(spec, settings),
        _trusted_types(spec, settings),
        _image(spec, settings),
        _service_account(spec, settings),
    ]
    return [message for message in found if message]


def _pickle(spec: ModelDeploymentSpec, settings: OperatorSettings) -> str | None:
    if spec.model.format is not ModelFormat.JOBLIB or settings.allow_pickle:
        return None
    return (
        "spec.model.format: joblib is refused: loading a pickle runs code from the artifact, "
        "and the operator's allowPickle is false (use onnx or skops)"
    )


def _trusted_types(spec: ModelDeploymentSpec, settings: OperatorSettings) -> str | None:
    extra = [name for name in spec.model.trusted_types if name not in settings.skops_trusted_types]
    if not extra:
        return None
    return (
        f"spec.model.trustedTypes: {', '.join(extra)} not in the operator's skopsTrustedTypes; "
        "a ModelDeployment may only narrow that list"
    )


def _image(spec: ModelDeploymentSpec, settings: OperatorSettings) -> str | None:
    image = spec.runtime.image
    if image is None or image_allowed(image, settings):
        return None
    return (
        f"spec.runtime.image: {image} is not the operator's defaultServingImage and matches "
        "no entry of its allowedImages"
    )


def image_allowed(image: str, settings: OperatorSettings) -> bool:
    """The default serving image, or a match of an ``allowedImages`` entry: the exact
    reference, any tag or digest of a repository, or anything under a prefix ending in ``/``.
    ``reg/serving`` never admits ``reg/serving-evil``."""
    if image == settings.default_serving_image:
        return True
    for entry in settings.allowed_images:
        if entry.endswith("/"):
            if image.startswith(entry):
                return True
        elif image == entry or image.startswith((f"{entry}:", f"{entry}@")):
            return True
    return False


def _service_account(spec: ModelDeploymentSpec, settings: OperatorSettings) -> str | None:
    account = spec.runtime.service_account_name
    if account is None or account in settings.allowed_service_accounts:
        return None
    return (
        f"spec.runtime.serviceAccountName: {account} is not in the operator's "
        "allowedServiceAccounts"
    )
