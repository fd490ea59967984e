"""Read the curated parquet written by ``flowae ingest`` back as one time-ordered frame."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq


class CuratedDataError(ValueError):
    """The curated folder cannot be used for training or evaluation."""


def curated_files(data_dir: Path) -> list[Path]:
    """The ``DIR/curated/*.parquet`` of an ingest output folder (``DIR/curated`` is accepted too)."""
    data_dir = Path(data_dir)
    folder = data_dir / "curated" if (data_dir / "curated").is_dir() else data_dir
    if not folder.is_dir():
        raise CuratedDataError(f"{data_dir}: not a folder written by `flowae ingest --out`")
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise CuratedDataError(f"{folder}: no curated parquet files (run `flowae ingest` first)")
    return files


def read_curated(files: list[Path], columns: list[str] | None = None) -> pd.DataFrame:
    """Concatenate curated files, keeping only ``columns`` that exist (read column-pruned)."""
    frames = []
    for path in files:
        schema = pq.read_schema(path)
        wanted = None if columns is None else [c for c in columns if c in schema.names]
        frames.append(pq.read_table(path, columns=wanted).to_pandas())
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def file_columns(files: list[Path]) -> list[str]:
    """Columns present in every curated file, in the first file's order."""
    common = list(pq.read_schema(files[0]).names)
    for path in files[1:]:
        names = set(pq.read_schema(path).names)
        common = [c for c in common if c in names]
    return common
