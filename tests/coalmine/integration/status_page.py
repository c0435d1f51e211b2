"""docs/cli.md quotes `kubectl coalmine status` and `history` from a real operator run.

The rollback scenario of the integration tier calls ``check_doc_pages`` once its canary is
rolled back: the pages are read through the real plugin, as a person would, and compared with
the blocks in docs/cli.md. What changes from run to run (ages, measured values, sample counts,
revision hashes, the temporary model path, the namespace) is masked before comparing, so the
test fails exactly when the doc shows a line, section, check, condition or event the operator
does not produce. ``COALMINE_UPDATE_DOCS=1`` rewrites the blocks from the run instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "cli.md"
DOC_NAMESPACE = "ml"
DOC_MODEL_DIR = "/models"
UPDATE = os.environ.get("COALMINE_UPDATE_DOCS") == "1"

_MASKS = [
    (re.compile(r"file://\S+?(?=[,)])"), "<uri>"),
    (re.compile(r"\b[0-9a-f]{10}\b"), "<revision>"),
    (re.compile(r"\b\d+(?:d\d+h|h\d+m|m\d+s|ms|s|m|h|d)\b"), "<age>"),
    (re.compile(r"\d+(?:\.\d+)?(?:e-?\d+)?"), "<n>"),
    (re.compile(r" {2,}"), "  "),
    # Whether a look was inconclusive before the failures depends on scheduling.
    (re.compile(r"; inconclusive for <age>"), ""),
]


def plugin_page(command: str, name: str, namespace: str, kubeconfig: Path) -> str:
    """What ``kubectl coalmine COMMAND NAME`` prints, through the installed plugin."""
    plugin = Path(sys.executable).parent / "kubectl-coalmine"
    result = subprocess.run(
        [str(plugin), command, name, "-n", namespace, "--kubeconfig", str(kubeconfig)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, f"kubectl coalmine {command}: {result.stdout}{result.stderr}"
    return result.stdout


def as_documented(page: str, namespace: str, model_dir: Path) -> str:
    """The page as the doc shows it: the test's namespace and temporary paths made readable."""
    page = page.replace(f"file://{model_dir}", f"file://{DOC_MODEL_DIR}")
    return re.sub(rf"\b{re.escape(namespace)}\b", DOC_NAMESPACE, page)


def shape(line: str) -> str:
    """A line with what varies between runs masked; what stays is what the doc promises."""
    for pattern, mask in _MASKS:
        line = pattern.sub(mask, line)
    return line.rstrip()


def doc_block(doc: str, command: str) -> str:
    """The console block in the doc that starts with ``$ kubectl coalmine COMMAND``."""
    match = re.search(rf"```console\n\$ kubectl coalmine {command} iris\n(.*?)```", doc, re.S)
    assert match, f"docs/cli.md has no console block for `kubectl coalmine {command} iris`"
    return match.group(1)


def differences(documented: str, real: str) -> list[str]:
    """Lines whose shape the doc shows but the run did not produce, or the other way round.
    Events are the one section where the doc may show fewer lines than a run: how many
    inconclusive looks come before the failures depends on scheduling."""
    doc_lines, real_lines = _lines(documented), _lines(real)
    missing = [f"doc only: {line}" for line in doc_lines if line not in real_lines]
    extra = [
        f"run only: {line}"
        for line in real_lines
        if line not in doc_lines and not _event_line(line, real)
    ]
    return missing + extra


def _lines(page: str) -> list[str]:
    return [shape(line) for line in page.splitlines() if line.strip()]


def _event_line(masked: str, page: str) -> bool:
    events = page.split("\nEvents:\n", 1)
    return len(events) == 2 and any(shape(line) == masked for line in events[1].splitlines())


def check_doc_pages(pages: dict[str, str]) -> None:
    """Compare each real page with its block in docs/cli.md, or rewrite the block."""
    doc = DOC.read_text()
    for command, page in pages.items():
        block = doc_block(doc, command)
        if UPDATE:
            doc = doc.replace(block, page)
            continue
        wrong = differences(block, page)
        assert not wrong, (
            f"docs/cli.md's `kubectl coalmine {command}` page differs from a real run "
            "(COALMINE_UPDATE_DOCS=1 rewrites it):\n" + "\n".join(wrong) + "\n\nreal:\n" + page
        )
    if UPDATE:
        DOC.write_text(doc)
