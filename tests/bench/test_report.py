"""The benchmark report: B4/B5 sections go in without touching the B1-B3 figures."""

from __future__ import annotations

import argparse

import pytest

from bench.report import replace_section
from bench.serving import _groups
from bench.wrk import PoolCheck, parse_pool

DOC = """# Serving benchmarks

header with B1-B3 provenance

## B1: framework overhead

| ours | 8,067 |

## B3: distance to the compute floor (c=1)

- overhead: 0.369 ms

## What limits the figures

- notes
"""


def test_a_new_section_goes_before_the_notes_and_leaves_the_rest_as_it_was() -> None:
    out = replace_section(DOC, "## B4: receipts\n\n| a | 1 |\n")
    before, after = out.split("## B4: receipts\n\n| a | 1 |\n\n")
    assert DOC.startswith(before)
    assert after == "## What limits the figures\n\n- notes\n"


def test_a_section_run_again_replaces_only_itself() -> None:
    doc = replace_section(replace_section(DOC, "## B4: old\n\nold"), "## B5: labels\n\nfive")
    out = replace_section(doc, "## B4: new\n\nnew")
    assert "old" not in out
    assert out == doc.replace("## B4: old\n\nold", "## B4: new\n\nnew")
    assert out.index("## B4") < out.index("## B5") < out.index("## What limits")


def test_sections_keep_their_order_whichever_runs_first() -> None:
    out = replace_section(replace_section(DOC, "## B5: five"), "## B4: four")
    assert out.index("## B3") < out.index("## B4") < out.index("## B5") < out.index("## What")


def test_a_document_without_notes_gets_the_section_at_the_end() -> None:
    assert replace_section("# Serving benchmarks\n", "## B5: five\n\nx") == (
        "# Serving benchmarks\n\n## B5: five\n\nx\n"
    )


def test_the_pool_check_is_read_from_wrk_output() -> None:
    out = "Requests/sec:   26.65\npool: answered=54 bad=34 wrapped=39\n"
    assert parse_pool(out) == PoolCheck(answered=54, bad=34, wrapped=39)
    with pytest.raises(ValueError, match="no pool line"):
        parse_pool("Requests/sec:   26.65\n")


def test_only_names_known_benchmarks_and_b1_to_b3_together() -> None:
    assert _groups("b4, B5") == {"B4", "B5"}
    assert _groups("B1,B2,B3") == {"B1", "B2", "B3"}
    with pytest.raises(argparse.ArgumentTypeError, match="together"):
        _groups("B2,B4")
    with pytest.raises(argparse.ArgumentTypeError, match="B6"):
        _groups("B6")
