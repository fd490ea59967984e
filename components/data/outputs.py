"""Atomic, deterministic parquet output.

Why: a nightly job that dies half-way must never leave a half-written curated file that the next
stage would read as complete. Rows stream into a temp file in the target folder; ``commit`` renames
it over the target (``os.replace`` is atomic on one filesystem). The writer adds no timestamps, so
the same rows give byte-identical files.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


class AtomicParquetWriter:
    """Opens the temp file on the first non-empty table; writes nothing if never given rows."""

    def __init__(self, target: Path, schema: pa.Schema, always_write: bool = True) -> None:
        self.target = target
        self.schema = schema
        self.always_write = always_write
        self.rows = 0
        self._tmp: Path | None = None
        self._writer: pq.ParquetWriter | None = None

    def _open(self) -> None:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent)
        os.close(fd)
        self._tmp = Path(name)
        self._writer = pq.ParquetWriter(self._tmp, self.schema, compression="zstd")

    def write(self, table: pa.Table | None) -> None:
        if table is None or table.num_rows == 0:
            return
        if self._writer is None:
            self._open()
        self._writer.write_table(table.cast(self.schema))
        self.rows += table.num_rows

    def commit(self) -> Path | None:
        """Move the file into place; with no rows, write an empty file or remove a stale one."""
        if self._writer is None:
            if not self.always_write:
                self.target.unlink(missing_ok=True)
                return None
            self._open()
        self._writer.close()
        os.replace(self._tmp, self.target)
        self._writer, self._tmp = None, None
        return self.target

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
        self._writer, self._tmp = None, None


def write_json_atomic(path: Path, payload: dict) -> Path:
    """Deterministic JSON (stable key order, trailing newline), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2, ensure_ascii=False, default=str)
        fh.write("\n")
    os.replace(name, path)
    return path
