"""The curated files written by ``flowae ingest``, in capture order, and the choice among them.

Why here: training, evaluation, ``retrain`` and ``compare`` all start from an ingest folder; they
must agree on which files exist, in which order they were captured (the manifest records it,
see ``capture_order``) and which of them a ``--files`` / ``--days`` option names.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from components.data.capture_order import DAYS, FileOrder, capture_key, order_files


class CuratedDataError(ValueError):
    """The curated folder cannot be used for training or evaluation."""


def curated_folder(data_dir: Path) -> Path:
    """``DIR/curated`` of an ingest output folder (``DIR/curated`` itself is accepted too)."""
    data_dir = Path(data_dir)
    folder = data_dir / "curated" if (data_dir / "curated").is_dir() else data_dir
    if not folder.is_dir():
        raise CuratedDataError(f"{data_dir}: not a folder written by `flowae ingest --out`")
    return folder


def curated_order(data_dir: Path) -> tuple[list[Path], FileOrder]:
    """The curated parquet files in capture order, and how that order was decided.

    The manifest beside ``curated/`` lists the files in capture order (ingest decided it); a
    folder without one is ordered here from the file names, and the order says when it guessed.
    """
    folder = curated_folder(data_dir)
    present = {p.name: p for p in folder.glob("*.parquet")}
    if not present:
        raise CuratedDataError(f"{folder}: no curated parquet files (run `flowae ingest` first)")
    manifest = folder.parent / "manifest.json"
    if manifest.is_file():
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        listed = [Path(e["curated"]).name for e in doc.get("files", []) if e.get("curated")]
        ordered = [present[n] for n in listed if n in present]
        ordered += [present[n] for n in sorted(present) if present[n] not in ordered]
        order = doc.get("order") or {}
        return ordered, FileOrder([p.name for p in ordered], order.get("method", "manifest order"),
                                  bool(order.get("guessed", False)), order.get("keys", {}))
    order = order_files(sorted(present))
    return [present[n] for n in order.files], order


def curated_files(data_dir: Path) -> list[Path]:
    """The ``DIR/curated/*.parquet`` of an ingest output folder, in capture order."""
    return curated_order(data_dir)[0]


def select_files(files: list[Path], names: list[str] | None = None, days: list[str] | None = None
                 ) -> list[Path]:
    """The files a ``--files`` / ``--days`` option names (all when neither is given), kept in order.

    A name matches a file's name, its stem, or the stem of the input it came from; a day matches
    the capture day in the file's name (``monday`` .. ``friday``).
    """
    if not names and not days:
        return list(files)
    chosen: list[Path] = []
    for name in names or []:
        key = Path(name).name
        hits = [f for f in files if key in (f.name, f.stem) or Path(key).stem == f.stem]
        if not hits:
            raise CuratedDataError(f"--files {name}: no such curated file; have: "
                                   + ", ".join(f.stem for f in files))
        chosen += hits
    for day in days or []:
        wanted = day.strip().lower()
        if wanted not in DAYS:
            raise CuratedDataError(f"--days {day}: not a weekday (monday .. sunday)")
        hits = [f for f in files if (k := capture_key(f.name)) is not None and DAYS[k[0]] == wanted]
        if not hits:
            raise CuratedDataError(f"--days {day}: no curated file names that day; have: "
                                   + ", ".join(f.stem for f in files))
        chosen += hits
    return [f for f in files if f in chosen]


def file_columns(files: list[Path]) -> list[str]:
    """Columns present in every curated file, in the first file's order."""
    common = list(pq.read_schema(files[0]).names)
    for path in files[1:]:
        names = set(pq.read_schema(path).names)
        common = [c for c in common if c in names]
    return common


def row_counts(files: list[Path]) -> list[int]:
    """Rows per file from the parquet footers (nothing is read)."""
    return [pq.ParquetFile(f).metadata.num_rows for f in files]
