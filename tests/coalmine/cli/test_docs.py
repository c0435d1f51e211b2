"""docs/cli.md shows real output: the pages the tests render, not hand-written copies."""

from __future__ import annotations

from pathlib import Path

SNAPSHOTS = Path(__file__).parent / "snapshots"
CLI_DOC = Path(__file__).resolve().parents[3] / "docs" / "cli.md"


def test_cli_doc_quotes_the_rendered_pages() -> None:
    doc = CLI_DOC.read_text()
    for snapshot in ("status-progressing.txt", "history-rolled-back.txt"):
        assert (SNAPSHOTS / snapshot).read_text() in doc, f"docs/cli.md is stale: {snapshot}"
