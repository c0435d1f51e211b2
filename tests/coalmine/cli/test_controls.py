"""Controls as merge patches, and when each is refused."""

from __future__ import annotations

import pytest

from coalmine.api import ModelDeploymentStatus, Phase
from coalmine.cli.controls import Control, annotation_patch, paused_patch, refusal
from tests.coalmine.cli.samples import NOW


@pytest.mark.parametrize(
    ("control", "annotation"),
    [
        (Control.PROMOTE, "coalmine.dev/promote"),
        (Control.PROMOTE_FULL, "coalmine.dev/promote-full"),
        (Control.ABORT, "coalmine.dev/abort"),
        (Control.RETRY, "coalmine.dev/retry"),
        (Control.ROTATE_KEYS, "coalmine.dev/rotate-keys"),
    ],
)
def test_each_control_is_one_timestamped_annotation(control: Control, annotation: str) -> None:
    assert annotation_patch(control, NOW) == {
        "metadata": {"annotations": {annotation: "2026-11-27T05:30:00Z"}}
    }


def test_pause_and_resume_patch_spec_paused() -> None:
    assert paused_patch(True) == {"spec": {"paused": True}}
    assert paused_patch(False) == {"spec": {"paused": False}}


@pytest.mark.parametrize("control", [Control.PROMOTE, Control.PROMOTE_FULL, Control.ABORT])
@pytest.mark.parametrize("phase", [Phase.PROGRESSING, Phase.PAUSED])
def test_promote_and_abort_act_on_a_running_canary(control: Control, phase: Phase) -> None:
    assert refusal(control, "iris", ModelDeploymentStatus(phase=phase)) is None


@pytest.mark.parametrize("control", [Control.PROMOTE, Control.PROMOTE_FULL, Control.ABORT])
@pytest.mark.parametrize(
    "phase", [Phase.PENDING, Phase.HEALTHY, Phase.ROLLING_BACK, Phase.DEGRADED, Phase.FAILED]
)
def test_promote_and_abort_are_refused_without_a_running_canary(
    control: Control, phase: Phase
) -> None:
    refused = refusal(control, "iris", ModelDeploymentStatus(phase=phase))

    assert refused is not None
    verb = control.value.split()[0]
    assert refused.message == f"nothing to {verb}: iris has no canary in progress (phase {phase})"


@pytest.mark.parametrize("phase", [Phase.DEGRADED, Phase.FAILED])
def test_retry_acts_after_a_rollback_or_failure(phase: Phase) -> None:
    assert refusal(Control.RETRY, "iris", ModelDeploymentStatus(phase=phase)) is None


def test_retry_restarts_analysis_that_paused_the_canary() -> None:
    status = ModelDeploymentStatus(phase=Phase.PAUSED, paused_by="analysis")

    assert refusal(Control.RETRY, "iris", status) is None


def test_retry_of_a_pause_by_a_person_points_to_resume() -> None:
    refused = refusal(
        Control.RETRY, "iris", ModelDeploymentStatus(phase=Phase.PAUSED, paused_by="user")
    )

    assert refused is not None
    assert refused.message == "iris is paused by a person (spec.paused): use resume, not retry"


@pytest.mark.parametrize("phase", [Phase.HEALTHY, Phase.PROGRESSING, Phase.ROLLING_BACK])
def test_retry_is_refused_otherwise(phase: Phase) -> None:
    refused = refusal(Control.RETRY, "iris", ModelDeploymentStatus(phase=phase))

    assert refused is not None
    assert refused.message.startswith(f"nothing to retry: iris is {phase}")


@pytest.mark.parametrize("phase", list(Phase))
def test_rotate_keys_is_never_refused(phase: Phase) -> None:
    assert refusal(Control.ROTATE_KEYS, "iris", ModelDeploymentStatus(phase=phase)) is None
