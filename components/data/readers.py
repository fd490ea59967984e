"""Readers: turn raw CIC-IDS2017 inputs into a stream of raw record batches in bounded memory.

Why a module of its own: the ingest logic (typing, checks, quarantine) must not care whether a
file is a 1 GB CSV with leading-space headers, a pandas re-save, or a parquet re-release. A reader
yields *raw* batches (CSV: every field as bytes, so that a stray text value or an invalid UTF-8
byte never aborts the whole file) together with the 1-based data-row number of every row, and
collects rows with the wrong field count on the side (pyarrow's ``invalid_row_handler``).
"""
from __future__ import annotations

import csv
import glob
import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq

CSV_SUFFIXES = (".csv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
SNIFF_BYTES = 1 << 16


class FileLevelError(Exception):
    """The whole file cannot be ingested; the message is the reason (one line, no path)."""


@dataclass(frozen=True)
class Discovery:
    """Files to ingest, in a stable order, and what happened to the rest of the inputs."""

    files: list[Path]
    notes: list[str] = field(default_factory=list)


def discover_inputs(inputs: list[str | os.PathLike]) -> Discovery:
    """Expand files, folders (their *.csv / *.parquet, sorted) and globs; drop repeats.

    A path that does not exist is kept (it fails later with a clear reason, like a file that
    disappears between listing and reading) unless it is a glob pattern that matched nothing.
    """
    files: list[Path] = []
    notes: list[str] = []
    seen: dict[str, Path] = {}

    def add(path: Path) -> None:
        key = os.path.realpath(path)
        if key in seen:
            notes.append(f"{path}: given more than once, ingested once")
            return
        seen[key] = path
        files.append(path)

    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in CSV_SUFFIXES + PARQUET_SUFFIXES)
            if not found:
                notes.append(f"{path}: folder has no .csv or .parquet files")
            for p in found:
                add(p)
        elif glob.has_magic(text) and not path.exists():
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True) if Path(m).is_file())
            if not matches:
                notes.append(f"{text}: pattern matched no files")
            for p in matches:
                add(p)
        else:
            add(path)
    return Discovery(files=files, notes=notes)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Content digest for lineage (MLflow inputs, manifest); streamed, so any size is fine."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def decode_text(raw: bytes) -> str:
    """UTF-8 when valid, else cp1252 (the original CIC-IDS2017 encoding), never an exception."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


@dataclass
class RawBatch:
    """One batch as read: raw column arrays by position, and each row's 1-based data-row number."""

    columns: list[pa.Array]
    row_numbers: np.ndarray


@dataclass
class BadLine:
    """A line pyarrow could not split into the header's number of fields."""

    row_number: int
    text: str
    fields: int


@dataclass
class RawSource:
    """An opened input: its raw header and a batch iterator; bad lines accumulate while iterating."""

    path: Path
    kind: str  # "csv" | "parquet"
    header: list[str]
    size_bytes: int
    batches: Iterator[RawBatch]
    bad_lines: list[BadLine] = field(default_factory=list)
    bad_numbers: list[int] = field(default_factory=list)  # numbering queue, owned by the reader
    bytes_read: int = 0  # best effort, for progress bars

    def drain_bad_lines(self) -> list[BadLine]:
        out, self.bad_lines[:] = list(self.bad_lines), []
        return out


def open_source(path: Path, block_size: int = 8 << 20) -> RawSource:
    """Open a CSV or parquet input; raise FileLevelError for what stops the whole file."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise FileLevelError("file not found (missing or removed before it could be read)") from None
    except OSError as exc:
        raise FileLevelError(f"cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise FileLevelError("empty file (0 bytes)")
    if path.suffix.lower() in PARQUET_SUFFIXES or _is_parquet(path):
        return _open_parquet(path, size)
    return _open_csv(path, size, block_size)


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


# --- CSV -------------------------------------------------------------------------------------

def _read_header(path: Path) -> tuple[list[str], int]:
    """First line of the file as field names; reject binary content before pyarrow sees it."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if b"\x00" in head:
        raise FileLevelError("binary content (NUL bytes), not a CSV file")
    line, sep, _ = head.partition(b"\n")
    if not sep and len(head) == SNIFF_BYTES:
        raise FileLevelError(f"no line break in the first {SNIFF_BYTES} bytes, not a CSV file")
    text = decode_text(line.rstrip(b"\r")).lstrip("\ufeff")
    if not text.strip():
        raise FileLevelError("first line is empty, expected a header")
    header = next(csv.reader(io.StringIO(text)))
    return header, len(line) + len(sep)


def _open_csv(path: Path, size: int, block_size: int) -> RawSource:
    header, header_bytes = _read_header(path)
    if header_bytes >= size or not _has_data_after(path, header_bytes):
        raise FileLevelError("header only, no data rows")
    names = [f"c{i}" for i in range(len(header))]
    source = RawSource(path=path, kind="csv", header=header, size_bytes=size,
                       batches=iter(()))

    def on_invalid(row) -> str:
        number = int(row.number) - 1  # physical line 1 is the header
        source.bad_lines.append(BadLine(row_number=number, text=row.text, fields=row.actual_columns))
        source.bad_numbers.append(number)
        return "skip"

    reader = pv.open_csv(
        path,
        read_options=pv.ReadOptions(use_threads=False, block_size=block_size, skip_rows=1,
                                    column_names=names),
        parse_options=pv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False),
        convert_options=pv.ConvertOptions(column_types={n: pa.binary() for n in names},
                                          strings_can_be_null=False, quoted_strings_can_be_null=False),
    )
    source.batches = _csv_batches(reader, source, size)
    return source


def _has_data_after(path: Path, offset: int) -> bool:
    with open(path, "rb") as fh:
        fh.seek(offset)
        while block := fh.read(1 << 16):
            if block.strip(b"\r\n"):
                return True
    return False


def _csv_batches(reader, source: RawSource, size: int) -> Iterator[RawBatch]:
    """Number the good rows: they fill the data-row numbers the bad lines did not take."""
    next_row = 1
    for batch in reader:
        n = batch.num_rows
        bad = np.asarray(source.bad_numbers, dtype=np.int64)
        candidates = np.arange(next_row, next_row + n + len(bad), dtype=np.int64)
        numbers = candidates[~np.isin(candidates, bad)][:n]
        if n:
            next_row = int(numbers[-1]) + 1
        source.bad_numbers[:] = [b for b in source.bad_numbers if b >= next_row]
        source.bytes_read = min(size, source.bytes_read + int(batch.nbytes))
        yield RawBatch(columns=list(batch.columns), row_numbers=numbers)
    source.bytes_read = size


# --- parquet ---------------------------------------------------------------------------------

def _open_parquet(path: Path, size: int, batch_rows: int = 65_536) -> RawSource:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise FileLevelError(f"not a readable parquet file ({exc})") from None
    header = list(pf.schema_arrow.names)
    if pf.metadata.num_rows == 0:
        raise FileLevelError("header only, no data rows")
    source = RawSource(path=path, kind="parquet", header=header, size_bytes=size, batches=iter(()))

    def batches() -> Iterator[RawBatch]:
        start = 1
        for batch in pf.iter_batches(batch_size=batch_rows, use_pandas_metadata=False):
            n = batch.num_rows
            source.bytes_read = min(size, source.bytes_read + int(batch.nbytes))
            yield RawBatch(columns=list(batch.columns),
                           row_numbers=np.arange(start, start + n, dtype=np.int64))
            start += n
        source.bytes_read = size

    source.batches = batches()
    return source
