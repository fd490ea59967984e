"""Atomic, deterministic output files, and the clean-up of those a killed run left behind.

Why: a nightly job that dies half-way must never leave a half-written curated file that the next
stage would read as complete. Rows stream into a temp file in the target folder; ``commit`` renames
it over the target (``os.replace`` is atomic on one filesystem). The writer adds no timestamps, so
the same rows give byte-identical files.

A run killed with SIGKILL cannot remove its temp files, so their names say whose they are
(``.<target>.flowae-<pid>-<random>.tmp``) and the next run removes those of processes that are
gone (``remove_stale_temp_files``), only in the folders ingest writes. One ingest per output folder
at a time: a temp file of a live process is left alone.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from components.locks import process_gone

#: A temp file of ours: ``.<target name>.flowae-<pid>-<mkstemp random>.tmp``.
TEMP_NAME = re.compile(r"^\..+\.flowae-(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp$")
#: Temp files of flowae before their names carried a pid: ``.<name>.parquet.<8 random>.tmp``.
LEGACY_TEMP_NAME = re.compile(r"^\..+\.(parquet|json)\.[a-z0-9_]{8}\.tmp$")
#: lz4 with dictionaries only for text columns, and min/max statistics only for the columns that
#: readers filter on: on 1 GB of flows zstd, float dictionaries and statistics on every feature
#: cost about 50 % more CPU for files a third smaller; ingest is CPU-bound, disks are not.
COMPRESSION = "lz4"
STATISTICS = ("row_number", "timestamp", "label", "source_file", "quarantine_reason")


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder: nothing more to do there
    finally:
        os.close(fd)


def safe_stem(stem: str) -> str:
    """An output stem that stays a plain name inside the output folder, whatever the input was
    called: ``...parquet`` has the stem ``..``, which as a folder name is the parent folder (and a
    stem starting with a dot would hide the output, or look like one of our temp files)."""
    cleaned = _UNSAFE.sub("_", stem)
    if not cleaned or cleaned.startswith("."):
        cleaned = f"_{cleaned}"
    return cleaned


_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f]")


def temp_prefix(target: Path) -> str:
    return f".{target.name}.flowae-{os.getpid()}-"


def remove_stale_temp_files(folders: list[Path]) -> list[Path]:
    """Remove temp files that killed flowae processes left in ``folders``; returns what went."""
    removed = []
    for folder in folders:
        if not Path(folder).is_dir():
            continue
        for path in Path(folder).iterdir():
            match = TEMP_NAME.match(path.name)
            stale = (match is not None and process_gone(int(match["pid"]))) or \
                bool(LEGACY_TEMP_NAME.match(path.name))
            if stale and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


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
        fd, name = tempfile.mkstemp(prefix=temp_prefix(self.target), suffix=".tmp", dir=self.target.parent)
        os.close(fd)
        self._tmp = Path(name)
        text = [f.name for f in self.schema if pa.types.is_string(f.type)]
        stats = [name for name in STATISTICS if name in self.schema.names]
        self._writer = pq.ParquetWriter(self._tmp, self.schema, compression=COMPRESSION,
                                        use_dictionary=text, write_statistics=stats)

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
        fsync_file(self._tmp)  # the bytes are on disk before the name says the file is complete
        os.replace(self._tmp, self.target)
        fsync_dir(self.target.parent)  # and the rename itself survives a power cut
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
    fd, name = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2, ensure_ascii=False, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(name, path)
        fsync_dir(path.parent)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return path
