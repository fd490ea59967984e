"""Markdown tables, built one way for every artifact, run description and summary flowae writes.

The evaluation summary and the leaderboard are here too, so that ``components/detect`` computes
figures and never writes markdown. Written by hand because ``DataFrame.to_markdown`` needs
``tabulate``, which flowae does not install, and pads cells to align columns (longer text, same
table).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from components.detect.compare import RECALL_AT_FPR
from components.detect.evaluation import Evaluation


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """``| a | b |`` lines: the header, the rule, one line per row. Cells are written with
    ``str`` (format numbers before); an empty cell is ``| |``."""
    lines = [_line(header), "|" + "---|" * len(header)]
    lines += [_line(row) for row in rows]
    return "\n".join(lines)


def _line(cells: Sequence[object]) -> str:
    return "|" + "".join(f" {text} |" if (text := str(cell)) else " |" for cell in cells)


def summary_table(evaluation: Evaluation) -> str:
    """Markdown for a Prefect artifact or a README: headline metrics, then recall per label."""
    e = evaluation
    metrics = [(name, _fmt(value)) for name, value in (
        ("flows", e.flows), ("attack flows", e.attacks), ("AUROC", e.auroc), ("AUPRC", e.auprc),
        ("precision @ threshold", e.precision), ("recall @ threshold", e.recall),
        ("F1 @ threshold", e.f1), ("FPR on benign", e.fpr), ("threshold", e.threshold),
        ("oracle best F1 (not deployable)", e.oracle_f1))]
    metrics += [(f"window {k}", _fmt(v)) for k, v in e.window.items()]
    if e.entity.get("available"):
        n = e.entity
        metrics += [(f"host AUROC ({n['hosts']} hosts, {n['nights']} nights)", _fmt(n["auroc"])),
                    (f"attacking hosts flagged at {n['budget']:g} benign/night", _fmt(n["recall_at_budget"])),
                    ("benign hosts flagged per night", _fmt(n["benign_flagged_per_night"]))]
    elif e.entity:
        metrics.append(("host figures", f"n/a: {e.entity.get('reason')}"))
    per_label = [(label, e.flows_per_label[label], _fmt(recall), _fmt(e.auroc_per_label.get(label, math.nan)))
                 for label, recall in e.recall_per_label.items()]
    c = e.confusion
    return "\n".join([markdown_table(["metric", "value"], metrics), "",
                      markdown_table(["label", "flows", "recall @ threshold", "AUROC vs benign"], per_label),
                      "", f"Confusion: TN {c['tn']}, FP {c['fp']}, FN {c['fn']}, TP {c['tp']}"])


def leaderboard_markdown(frame: pd.DataFrame) -> str:
    """The leaderboard (``detect.compare.leaderboard``), numbers to 4 decimals."""
    return markdown_table(frame.columns, [[_cell(v) for v in row] for row in frame.itertuples(index=False)])


def _fmt(value) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.4f}"


def _cell(value) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def summary_markdown(title: str, values: dict) -> str:
    """A stage's key figures as a titled two-column table (the train and retrain artifacts)."""
    return f"## {title}\n\n" + markdown_table(["", ""], values.items())


def other_day_note(board, other_files: list[str]) -> str:
    """One line under the leaderboard: what the recall@1%FPR columns were measured against."""
    if RECALL_AT_FPR in board.columns:
        return (f"{RECALL_AT_FPR}: share of attack flows above the 99th percentile of each model's "
                f"scores on other-day benign flows ({', '.join(other_files)}).")
    return (f"{RECALL_AT_FPR} not reported: the test data holds no benign flows of another day than "
            "the training files' (give such files with --data and train on others with --files/--days).")
