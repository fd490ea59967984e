"""Readers: turn one input (a CSV or parquet file, gzipped or in a zip archive) into a stream of raw
record batches in bounded memory, hashing its bytes on the way.

Why a module of its own: the ingest logic (typing, checks, quarantine) must not care whether a
file is a 1 GB CSV with leading-space headers, a pandas re-save, a parquet re-release or a member
of the published zip. A reader yields *raw* batches (CSV: every field as bytes, so that a stray
text value or an invalid UTF-8 byte never aborts the whole file) together with the 1-based
data-row number of every row and the lines that could not be split into the header's fields
(pyarrow's ``invalid_row_handler``, plus the lines ``streams.CsvLineGuard`` took out). Whatever
stops the whole file is a ``FileLevelError`` with a one-line reason.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq

from components.data.errors import FileLevelError
from components.data.inputs import InputFile
from components.data.streams import (
    BROKEN_LINE_MARKER,
    CsvLineGuard,
    HashedFile,
    HashingStream,
    decode_text,
)

SNIFF_BYTES = 1 << 16
PARQUET_BATCH_ROWS = 65_536
_CONTROL = bytes(range(9)) + b"\x0b\x0c" + bytes(range(14, 32)) + b"\x7f"


def sha256_file(path: Path) -> str:
    """Content digest for lineage (MLflow inputs, manifest) and model files; streamed by
    ``hashlib.file_digest``, so any size is fine."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@dataclass
class BadLine:
    """A line that could not be split into the header's fields; ``reason`` overrides the count."""

    row_number: int
    text: str
    fields: int
    reason: str | None = None


@dataclass
class RawBatch:
    """One batch as read: raw column arrays by header position (None where not read), each row's
    1-based data-row number, and the bad lines met while reading it."""

    columns: list[pa.Array | None]
    row_numbers: np.ndarray
    bad_lines: list[BadLine] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.row_numbers)


@dataclass
class InputBytes:
    """An input's bytes, open: the hashed layer, the stream to read the content from (the same,
    or a gzip decompressor over it), the size (on disk; a member's uncompressed size)."""

    item: InputFile
    hashed: HashedFile | HashingStream
    stream: object
    size: int
    closers: list = field(default_factory=list)

    @property
    def bytes_read(self) -> int:
        return self.hashed.bytes_read

    def sha256(self) -> str | None:
        """Digest of the input (a zip member: of its content); reads what was not read yet."""
        try:
            return self.hashed.hexdigest()
        except (OSError, EOFError, ValueError, zlib.error, zipfile.BadZipFile):
            return None

    def close(self) -> None:
        for close in reversed(self.closers):
            try:
                close()
            except Exception:  # noqa: BLE001, S110 - closing must never hide the real outcome
                pass

    def __enter__(self) -> InputBytes:  # noqa: PYI034
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class RawSource:
    """An opened input: its raw header, then ``batches(positions)`` of the columns to read."""

    data: InputBytes
    kind: str  # "csv" | "parquet"
    header: list[str]
    column_types: list[pa.DataType] | None  # parquet: the type of every header column
    _batches: Callable[[list[int]], Iterator[RawBatch]]

    def batches(self, positions: list[int]) -> Iterator[RawBatch]:
        return self._batches(positions)


def open_input(item: InputFile | Path) -> InputBytes:
    """Open an input's bytes; FileLevelError when there is nothing to read (missing, a folder,
    no permission, a broken archive)."""
    item = item if isinstance(item, InputFile) else InputFile(Path(item))
    path = Path(item.path)
    closers: list = []
    try:
        if item.member is None:
            hashed = HashedFile(path)
            closers.append(hashed.close)
            stream = hashed
            if hashed.size and item.gzipped:
                stream = gzip.GzipFile(fileobj=hashed, mode="rb")
                closers.append(stream.close)
            return InputBytes(item, hashed, stream, hashed.size, closers)
        archive = zipfile.ZipFile(path)
        closers.append(archive.close)
        info = archive.getinfo(item.member)
        hashed = HashingStream(archive.open(info), size=info.file_size)
        closers.append(hashed.close)
        return InputBytes(item, hashed, hashed, info.file_size, closers)
    except FileNotFoundError:
        reason = "file not found (missing or removed before it could be read)"
    except IsADirectoryError:
        reason = "is a folder, not a file"
    except PermissionError as exc:
        reason = f"cannot read: {exc.strerror or exc}"
    except zipfile.BadZipFile as exc:
        reason = f"not a readable zip archive ({exc})"
    except KeyError:
        reason = f"no member {item.member!r} in the archive"
    except (RuntimeError, NotImplementedError) as exc:  # encrypted, unsupported compression
        reason = f"cannot read archive member: {exc}"
    for close in reversed(closers):
        close()
    raise FileLevelError(reason)


def open_source(data: InputBytes, block_size: int = 8 << 20) -> RawSource:
    """Read the header of an opened input; FileLevelError for what stops the whole file."""
    item = data.item
    if data.size == 0:
        raise FileLevelError("empty file (0 bytes)")
    if item.member is None and Path(item.path).suffix.lower() == ".zip":
        raise FileLevelError("a zip archive holds many inputs: list its members with discover_inputs"
                             if zipfile.is_zipfile(item.path) else "not a readable zip archive")
    head = b""
    if data.stream is data.hashed and isinstance(data.hashed, HashedFile):  # a plain file: sniff
        head = data.hashed.read(8)
        data.hashed.seek(0)
    if item.looks_parquet or head.startswith(b"PAR1"):
        return _open_parquet(data)
    if head.startswith(b"PK\x03\x04"):
        raise FileLevelError("a zip archive without a .zip name: rename it to .zip")
    return _open_csv(data, block_size)


# --- CSV -------------------------------------------------------------------------------------

def _open_csv(data: InputBytes, block_size: int) -> RawSource:
    item = data.item
    guard = CsvLineGuard(data.stream, what="gzip data" if item.gzipped else
                         ("archive member" if item.member else "file"))
    header = _read_header(guard)
    names = [f"c{i}" for i in range(len(header))]
    bad_lines: list[BadLine] = []

    def on_invalid(row) -> str:
        number = int(row.number) - 1  # physical line 1 is the header
        text = row.text
        if text.startswith(BROKEN_LINE_MARKER):
            original = guard.broken[int(text[len(BROKEN_LINE_MARKER):])]
            bad_lines.append(BadLine(number, original, original.count(",") + 1, "unterminated quote"))
        else:
            bad_lines.append(BadLine(number, text, row.actual_columns))
        return "skip"

    def batches(positions: list[int]) -> Iterator[RawBatch]:
        wanted = [names[i] for i in positions]
        reader = pv.open_csv(
            guard,
            read_options=pv.ReadOptions(use_threads=False, block_size=block_size, skip_rows=1,
                                        column_names=names),
            parse_options=pv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False),
            convert_options=pv.ConvertOptions(column_types={n: pa.binary() for n in wanted},
                                              include_columns=wanted, strings_can_be_null=False,
                                              quoted_strings_can_be_null=False),
        )
        return _numbered(reader, positions, len(names), bad_lines)

    return RawSource(data, "csv", header, None, batches)


def _read_header(guard: CsvLineGuard) -> list[str]:
    """First line as field names; reject binary content and header-only files before pyarrow."""
    head, complete = guard.peek(SNIFF_BYTES)
    raw = guard.raw_head
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileLevelError("UTF-16 text: save it as a UTF-8 (or cp1252) CSV file")
    if b"\x00" in raw:
        raise FileLevelError("binary content (NUL bytes), not a CSV file")
    if raw and (sum(raw.count(c) for c in _CONTROL) > 0.01 * len(raw) or _mostly_undecodable(raw)):
        raise FileLevelError("binary content (control bytes), not a CSV file")
    line, sep, _ = head.partition(b"\n")
    if not sep and not complete:
        raise FileLevelError(f"no line break in the first {SNIFF_BYTES} bytes, not a CSV file")
    text = decode_text(line.rstrip(b"\r")).lstrip("\ufeff")
    if not text.strip():
        raise FileLevelError("first line is empty, expected a header")
    if text.startswith(BROKEN_LINE_MARKER):
        raise FileLevelError("header line has an unterminated quote")
    after, complete = guard.peek(len(line) + len(sep) + SNIFF_BYTES)
    if complete and not after[len(line) + len(sep):].strip(b"\r\n"):
        raise FileLevelError("header only, no data rows")
    return next(csv.reader(io.StringIO(text)))


def _mostly_undecodable(raw: bytes) -> bool:
    """Random bytes: many high bytes that are not UTF-8 (cp1252 text has few)."""
    if raw.isascii():
        return False
    try:
        raw.decode("utf-8")
        return False
    except UnicodeDecodeError:
        pass
    high = len(raw) - len(raw.decode("ascii", errors="ignore"))
    return high > 0.3 * len(raw)


def _numbered(reader, positions: list[int], width: int, bad_lines: list[BadLine]) -> Iterator[RawBatch]:
    """Number the good rows: they fill the data-row numbers the bad lines did not take. The bad
    lines met while parsing a block are reported before its batch is returned, so each batch
    carries its own."""
    next_row = 1
    pending: list[int] = []
    for batch in reader:
        n = batch.num_rows
        mine, bad_lines[:] = list(bad_lines), []
        pending.extend(b.row_number for b in mine)
        bad = np.asarray(pending, dtype=np.int64)
        candidates = np.arange(next_row, next_row + n + len(bad), dtype=np.int64)
        numbers = candidates[~np.isin(candidates, bad)][:n]
        if n:
            next_row = int(numbers[-1]) + 1
        pending = [b for b in pending if b >= next_row]
        columns: list[pa.Array | None] = [None] * width
        for pos, arr in zip(positions, batch.columns):
            columns[pos] = arr
        yield RawBatch(columns=columns, row_numbers=numbers, bad_lines=mine)
    if bad_lines:  # a bad last line can arrive after the last batch
        yield RawBatch(columns=[None] * width, row_numbers=np.zeros(0, dtype=np.int64),
                       bad_lines=list(bad_lines))
        bad_lines.clear()


# --- parquet ---------------------------------------------------------------------------------

def iter_parquet_batches(pf, batch_rows: int, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """The file's batches, one row group at a time: a single ``iter_batches`` over a whole file
    keeps what it decoded until the end (pyarrow 25: about 200 bytes a row, 2 GB more at 1e7
    flows), one reader per row group frees it as it goes (flat memory, same speed)."""
    for group in range(pf.metadata.num_row_groups):
        yield from pf.iter_batches(batch_size=batch_rows, row_groups=[group], columns=columns,
                                   use_pandas_metadata=False)


def _open_parquet(data: InputBytes) -> RawSource:
    stream = data.stream
    if stream is not data.hashed or not isinstance(data.hashed, HashedFile):
        stream = pa.BufferReader(stream.read())  # a parquet member or .parquet.gz: compact, in memory
    try:
        pf = pq.ParquetFile(stream)
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise FileLevelError(f"not a readable parquet file (truncated or corrupt: "
                             f"{str(exc).splitlines()[0]})") from None
    data.closers.append(pf.close)
    schema = pf.schema_arrow
    header = list(schema.names)
    if pf.metadata.num_rows == 0:
        raise FileLevelError("header only, no data rows")
    types = [f.type for f in schema]

    def batches(positions: list[int]) -> Iterator[RawBatch]:
        for pos in positions:
            kind = schema.field(pos).type
            if pa.types.is_nested(kind):
                raise FileLevelError(f"column {header[pos]!r} holds nested values ({kind}), "
                                     "not one value per row")
        names = [header[i] for i in positions]
        by_name = len(set(header)) == len(header)
        start = 1
        try:
            for batch in iter_parquet_batches(pf, PARQUET_BATCH_ROWS, names if by_name else None):
                n = batch.num_rows
                columns: list[pa.Array | None] = [None] * len(header)
                for pos in positions:
                    columns[pos] = batch.column(names.index(header[pos]) if by_name else pos)
                yield RawBatch(columns=columns, row_numbers=np.arange(start, start + n, dtype=np.int64))
                start += n
        except (pa.ArrowInvalid, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                raise
            raise FileLevelError(f"corrupt parquet data: {str(exc).splitlines()[0]}") from None

    return RawSource(data, "parquet", header, types, batches)
