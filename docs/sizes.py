"""Module and function size figures for docs/architecture.md: python3 docs/sizes.py PATH...

Module size is its line count; a function's is its span in the ast (decorators excluded),
nested functions counted on their own too.
"""

from __future__ import annotations

import ast
import statistics
import sys
from pathlib import Path


def _percentile(values: list[int], share: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _functions(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            span = (node.end_lineno or node.lineno) - node.lineno + 1
            found.append((span, f"{path}:{node.lineno} {node.name}"))
    return found


def report(roots: list[str]) -> None:
    files = sorted(f for root in roots for f in Path(root).rglob("*.py"))
    modules = [(len(f.read_text().splitlines()), str(f)) for f in files]
    functions = sorted((fn for f in files for fn in _functions(f)), reverse=True)
    lines, spans = [n for n, _ in modules], [n for n, _ in functions]
    biggest = max(modules)
    print(
        f"{' '.join(roots)}: {len(modules)} modules / {sum(lines)} lines; module median "
        f"{statistics.median(lines):.0f}, p90 {_percentile(lines, 0.9)}, max {biggest[0]} "
        f"({biggest[1]})"
    )
    print(
        f"  functions {len(spans)}, median {statistics.median(spans):.0f}, p90 "
        f"{_percentile(spans, 0.9)}, max {max(spans)}, over 25 lines: {sum(n > 25 for n in spans)}"
    )
    for span, name in functions[:10]:
        print(f"  {span:4d}  {name}")


if __name__ == "__main__":
    report(sys.argv[1:] or ["operator/coalmine", "serving/coalmine_serving"])
