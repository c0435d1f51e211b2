"""Bench B10's arithmetic: takeover figures against the election protocol's own bounds."""

from __future__ import annotations

from bench.takeover import Kill, summarise


def test_summary_against_the_protocol_bounds_and_the_target():
    kills = [Kill(10.4, 10.9), Kill(13.9, 14.2), Kill(15.4, 15.8)]
    summary = summarise(kills, lease_duration=12, retry_period=2)
    assert (summary.protocol_floor, summary.protocol_ceiling) == (10, 14)
    assert summary.lease_median == 13.9 and summary.lease_max == 15.4
    assert summary.leading_median == 14.2 and summary.leading_max == 15.8
    assert summary.max_over_ceiling == round(15.4 / 14, 3)
    assert summary.within_target == 2  # 15.4 s is over the 15 s target
    assert summary.kills == 3
