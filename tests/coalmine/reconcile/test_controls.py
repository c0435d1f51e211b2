from dataclasses import fields

from coalmine.cli import controls as cli_controls
from coalmine.controls import (
    ANNOTATION_ROTATE_KEYS,
    ANNOTATIONS,
    annotations_for,
    parse_controls,
    rotate_keys_requested,
)
from coalmine.rollout.types import Controls


def test_no_annotations_means_no_controls():
    assert parse_controls(None, paused=False) == Controls()


def test_presence_sets_a_control_and_false_does_not():
    found = parse_controls(
        {"coalmine.dev/promote": "", "coalmine.dev/abort": "false", "other": "x"}, paused=True
    )
    assert found == Controls(paused=True, promote=True)


def test_every_control_has_an_annotation():
    keys = [
        "coalmine.dev/promote",
        "coalmine.dev/promote-full",
        "coalmine.dev/abort",
        "coalmine.dev/retry",
    ]
    found = parse_controls(dict.fromkeys(keys, "true"), paused=False)
    assert found == Controls(promote=True, promote_full=True, abort=True, retry=True)
    # Every flag but the spec's own ``paused`` is requested by exactly one annotation.
    assert set(ANNOTATIONS) == {f.name for f in fields(Controls)} - {"paused"}


def test_consumed_controls_map_to_annotation_keys():
    assert annotations_for(Controls(promote_full=True, abort=True)) == [
        "coalmine.dev/abort",
        "coalmine.dev/promote-full",
    ]
    assert annotations_for(Controls(paused=True)) == []  # spec.paused is not an annotation


def test_the_kubectl_plugin_writes_the_keys_the_operator_reads():
    operator_reads = {*ANNOTATIONS.values(), ANNOTATION_ROTATE_KEYS}
    assert set(cli_controls.ANNOTATIONS.values()) == operator_reads


def test_rotate_keys_is_read_outside_the_engine_and_false_means_no():
    assert rotate_keys_requested({"coalmine.dev/rotate-keys": "2026-12-01T03:10:00Z"})
    assert not rotate_keys_requested({"coalmine.dev/rotate-keys": "false"})
    assert not rotate_keys_requested(None)
    # The engine never sees it, so it never consumes (removes) it.
    assert parse_controls({"coalmine.dev/rotate-keys": ""}, paused=False) == Controls()
