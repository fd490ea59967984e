"""Every markdown table flowae writes comes from one builder: header, rule, one line per row."""
from __future__ import annotations

from components.report.tables import markdown_table


def test_header_rule_rows_and_empty_cells():
    text = markdown_table(["", "version", "auroc"], [["challenger", 3, "0.9100"], ["champion", None, ""]])
    assert text == "| | version | auroc |\n|---|---|---|\n| challenger | 3 | 0.9100 |\n| champion | None | |"


def test_a_table_without_rows_is_its_header_and_rule():
    assert markdown_table(["a", "b"], []) == "| a | b |\n|---|---|"
