"""Markdown tables, built one way for every artifact, run description and summary flowae writes.

A leaf module (it imports nothing of flowae), so pure code in ``components/detect`` may use it as
well as the report and serve modules. Written by hand because ``DataFrame.to_markdown`` needs
``tabulate``, which flowae does not install, and pads cells to align columns (longer text, same
table).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """``| a | b |`` lines: the header, the rule, one line per row. Cells are written with
    ``str`` (format numbers before); an empty cell is ``| |``."""
    lines = [_line(header), "|" + "---|" * len(header)]
    lines += [_line(row) for row in rows]
    return "\n".join(lines)


def _line(cells: Sequence[object]) -> str:
    return "|" + "".join(f" {text} |" if (text := str(cell)) else " |" for cell in cells)
