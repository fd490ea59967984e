"""Byte streams under the readers: hash the input while it is read, and hand pyarrow's CSV reader
text it can always split into lines.

Why: the sha256 in the manifest must cover exactly the bytes ingested without reading a large file
a second time, so the hash is taken on the bytes as the reader pulls them (``HashedFile`` for files
on disk, which parquet reads in any order, ``HashingStream`` for zip members). And a few kinds of
broken text make pyarrow either stop (a bad line with non-UTF-8 bytes cannot reach Python) or
silently merge lines (an unterminated quote swallows the rest of the file into one field), which
``CsvLineGuard`` repairs before pyarrow sees them, whole lines at a time.
"""
from __future__ import annotations

import codecs
import hashlib
import io
import os
import zipfile
import zlib
from collections import deque
from pathlib import Path

import numpy as np

from components.data.errors import FileLevelError

#: What a line with an unterminated quote is replaced by; the reader reports it as a bad line.
BROKEN_LINE_MARKER = "\x00flowae:unterminated-quote:"
DECOMPRESSION_ERRORS = (EOFError, zlib.error, zipfile.BadZipFile, OSError)


def _cp1252_fallback(err: UnicodeDecodeError) -> tuple[str, int]:
    return err.object[err.start:err.end].decode("cp1252", errors="replace"), err.end


codecs.register_error("flowae-cp1252", _cp1252_fallback)


def decode_text(raw: bytes) -> str:
    """UTF-8 where valid, the rest as cp1252 (the original CIC-IDS2017 encoding); never raises."""
    return raw.decode("utf-8", errors="flowae-cp1252")


class HashedFile(io.RawIOBase):
    """A file on disk, read in any order, whose bytes are hashed once each, in file order.

    Reads that run ahead of the hashed prefix hash the gap first (CSV reads are sequential, so
    this never happens there; parquet reads its footer first, which is hashed at the end)."""

    def __init__(self, path: Path, chunk: int = 1 << 20) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDONLY)
        self.size = os.fstat(self._fd).st_size
        self._pos = 0
        self._hashed = 0
        self._sha = hashlib.sha256()
        self._chunk = chunk

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, self.size - self._pos)
        data = os.pread(self._fd, size, self._pos)
        self._feed(self._pos, data)
        self._pos += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    @property
    def bytes_read(self) -> int:
        return self._hashed

    def _feed(self, start: int, data: bytes) -> None:
        end = start + len(data)
        if end <= self._hashed:
            return
        if start > self._hashed:
            self._hash_range(self._hashed, start)
        self._sha.update(memoryview(data)[self._hashed - start:])
        self._hashed = end

    def _hash_range(self, start: int, end: int) -> None:
        while start < end:
            block = os.pread(self._fd, min(self._chunk, end - start), start)
            if not block:
                break
            self._sha.update(block)
            start += len(block)
        self._hashed = max(self._hashed, start)

    def hexdigest(self) -> str:
        """The sha256 of the whole file (the bytes not read yet are read now)."""
        self._hash_range(self._hashed, self.size)
        return self._sha.hexdigest()

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


class HashingStream(io.RawIOBase):
    """A forward-only stream (a zip member) whose bytes are hashed as they are read."""

    def __init__(self, raw, size: int | None = None) -> None:
        super().__init__()
        self._raw = raw
        self._sha = hashlib.sha256()
        self.size = size
        self.bytes_read = 0
        self._broken = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._raw.read(size)
        except BaseException:
            self._broken = True
            raise
        self._sha.update(data)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def hexdigest(self) -> str:
        """Digest of the whole content; ValueError when part of it could not be read."""
        while not self._broken and self.read(1 << 20):
            pass
        if self._broken:
            raise ValueError("the content could not be read whole")
        return self._sha.hexdigest()

    def close(self) -> None:
        self._raw.close()
        super().close()


class CsvLineGuard(io.RawIOBase):
    """What pyarrow's CSV reader reads: the input's text, whole lines at a time, with three repairs.

    - CR-only line ends (as Python's universal newlines reads them) become LF.
    - A line with an odd number of double quotes holds an unterminated quoted field, which would
      swallow every following line into one field. It is replaced by a marker line that the reader
      reports as a bad line; ``broken`` keeps the original text for the quarantine file.
    - Bytes that are not valid UTF-8 are read as cp1252, so that pyarrow can hand any bad line to
      Python as text (it decodes bad lines as UTF-8 and gives up on the whole file otherwise).
    Clean ASCII blocks without quotes (the normal case) pass with a few memchr-speed scans.
    Flow records never hold line breaks inside quoted values; a file that does is read line by line.
    """

    def __init__(self, source, what: str = "file", chunk: int = 1 << 20) -> None:
        super().__init__()
        self._src = source
        self._what = what
        self._chunk = chunk
        self._carry = b""
        self._ready: deque[bytes] = deque()
        self._ready_bytes = 0
        self._eof = False
        self.cr_only: bool | None = None
        self.raw_head = b""
        self.broken: list[str] = []

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes, whole repaired lines where possible: a short read is not the end
        (pyarrow reads on until it gets nothing), and it saves copying blocks into one another."""
        while not self._ready and not self._eof:
            self._fill(size if size and size > 0 else self._chunk)
        if not self._ready:
            return b""
        piece = self._ready.popleft()
        if size is not None and 0 <= size < len(piece):
            piece, rest = piece[:size], piece[size:]
            self._ready.appendleft(rest)
        self._ready_bytes -= len(piece)
        return piece

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def peek(self, size: int) -> tuple[bytes, bool]:
        """Up to ``size`` repaired bytes without consuming them, and whether that is all there is."""
        while self._ready_bytes < size and not self._eof:
            self._fill()
        return b"".join(self._ready)[:size], self._eof and self._ready_bytes <= size

    def _read_source(self, size: int) -> bytes:
        try:
            return self._src.read(max(size - len(self._carry), 1 << 16))
        except DECOMPRESSION_ERRORS as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                raise  # a real I/O error: may be transient
            raise FileLevelError(f"corrupt {self._what}: {exc}") from None

    def _fill(self, size: int | None = None) -> None:
        raw = self._read_source(size or self._chunk)
        if not self.raw_head:
            self.raw_head = raw[: 1 << 16]
        if self.cr_only is None and raw:
            lf, cr = raw.find(b"\n"), raw.find(b"\r")
            if cr == -1 or cr < len(raw) - 1 or lf != -1:  # a CR at the very end: look further
                self.cr_only = cr != -1 and (lf == -1 or cr < lf) and raw[cr + 1:cr + 2] != b"\n"
        data = self._carry + raw if self._carry else raw
        if self.cr_only:
            data = data.replace(b"\r", b"\n")
        if not raw:
            self._eof = True
            self._carry = b""
        else:
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # no line end yet: keep reading (only a very long line gets here)
                self._carry = data
                return
            data, self._carry = data[:cut], data[cut:]
        if data:
            data = self._repair(data)
            self._ready.append(data)
            self._ready_bytes += len(data)

    def _repair(self, lines: bytes) -> bytes:
        if not lines.isascii():
            try:
                lines.decode("utf-8")
            except UnicodeDecodeError:
                lines = decode_text(lines).encode("utf-8")
        if b'"' in lines:
            lines = self._mark_unterminated(lines)
        return lines

    def _mark_unterminated(self, lines: bytes) -> bytes:
        """Replace every line with an odd number of double quotes by a marker line (vectorised)."""
        buf = np.frombuffer(lines, dtype=np.uint8)
        ends = np.flatnonzero(buf == 0x0A)
        if not len(ends) or ends[-1] != len(buf) - 1:
            ends = np.append(ends, len(buf))  # the last line of the file has no line end
        quotes = np.flatnonzero(buf == 0x22)
        odd = np.flatnonzero(np.bincount(np.searchsorted(ends, quotes), minlength=len(ends)) & 1)
        if not len(odd):
            return lines
        pieces, start = [], 0
        for i in odd.tolist():  # one step per broken line, not per row
            first = int(ends[i - 1]) + 1 if i else 0
            last = int(ends[i])
            pieces.append(lines[start:first])
            self.broken.append(lines[first:last].rstrip(b"\r").decode("utf-8"))
            pieces.append(f"{BROKEN_LINE_MARKER}{len(self.broken) - 1}".encode())
            start = last
        pieces.append(lines[start:])
        return b"".join(pieces)

    def close(self) -> None:
        close = getattr(self._src, "close", None)
        if close is not None:
            close()
        super().close()
