from coalmine.controls import annotations_for, parse_controls
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


def test_consumed_controls_map_to_annotation_keys_by_field_or_key():
    assert annotations_for(("promote_full", "coalmine.dev/abort", "bogus")) == [
        "coalmine.dev/abort",
        "coalmine.dev/promote-full",
    ]
