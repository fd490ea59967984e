"""The pieces under ingest, on tiny inputs: hashing while reading, the CSV line guard, the GX
sample, and the read-ahead / write-behind threads."""
from __future__ import annotations

import hashlib
import io
import os

import numpy as np
import pyarrow as pa
import pytest

from components.data.background import WriteBehind, prefetch
from components.data.errors import FileLevelError
from components.data.sampling import RowSample
from components.data.streams import BROKEN_LINE_MARKER, CsvLineGuard, HashedFile, HashingStream


def test_hashed_file_hashes_every_byte_once_in_order_whatever_the_reads(tmp_path):
    data = os.urandom(300_000)
    path = tmp_path / "blob"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    with HashedFile(path, chunk=4096) as sequential:
        while sequential.read(7777):
            pass
        assert sequential.hexdigest() == expected
    with HashedFile(path, chunk=4096) as scattered:  # as parquet reads: footer first, then pages
        scattered.seek(-1000, os.SEEK_END)
        scattered.read(1000)
        scattered.seek(50_000)
        scattered.read(10_000)
        scattered.seek(10)
        scattered.read(100)
        assert scattered.hexdigest() == expected


def test_hashing_stream_drains_what_was_not_read():
    data = os.urandom(50_000)
    stream = HashingStream(io.BytesIO(data), size=len(data))
    assert stream.read(10) == data[:10]
    assert stream.hexdigest() == hashlib.sha256(data).hexdigest()


def _guarded(data: bytes, chunk: int = 8) -> tuple[bytes, CsvLineGuard]:
    guard = CsvLineGuard(io.BytesIO(data), chunk=chunk)
    out = b""
    while piece := guard.read(5):
        out += piece
    return out, guard


def test_guard_turns_cr_only_line_ends_into_lf():
    assert _guarded(b"a,b\r1,2\r3,4\r")[0] == b"a,b\n1,2\n3,4\n"
    assert _guarded(b"a,b\r\n1,2\r\n")[0] == b"a,b\r\n1,2\r\n"  # CRLF stays as it is


def test_guard_replaces_lines_with_an_unterminated_quote():
    out, guard = _guarded(b'a,b\n"1,2\n3,"x"\n4,5"\n6,7')
    assert out == (b"a,b\n" + f"{BROKEN_LINE_MARKER}0".encode() + b'\n3,"x"\n'
                   + f"{BROKEN_LINE_MARKER}1".encode() + b"\n6,7")
    assert guard.broken == ['"1,2', '4,5"']


def test_guard_reads_bytes_that_are_not_utf8_as_cp1252():
    out, _ = _guarded("a,\u2013\n".encode() + b"b,\x96\n", chunk=3)
    assert out.decode("utf-8") == "a,\u2013\nb,\u2013\n"


def test_guard_turns_decompression_errors_into_one_line():
    class Broken(io.RawIOBase):
        def read(self, size=-1):
            raise EOFError("Compressed file ended before the end-of-stream marker was reached")

    with pytest.raises(FileLevelError, match="^corrupt gzip data: Compressed file ended"):
        CsvLineGuard(Broken(), what="gzip data").read(10)


def _offer(sample: RowSample, sizes: list[int]) -> pa.Table:
    start = 0
    for n in sizes:
        idx = sample.candidates(n)
        sample.add(pa.table({"row_number": pa.array(start + 1 + idx, pa.int64())}))
        start += n
    return sample.table()


def test_sample_is_uniform_bounded_and_the_same_whatever_the_batches():
    one = _offer(RowSample(1000, seed=3), [100_000])
    many = _offer(RowSample(1000, seed=3), [7_000] * 14 + [2_000])
    assert one.num_rows == 1000 and one.equals(many)
    rows = np.array(one["row_number"])
    assert (np.diff(rows) > 0).all()  # in file order
    assert np.histogram(rows, bins=4, range=(1, 100_001))[0].min() > 200  # drawn across the file
    assert _offer(RowSample(1000, seed=4), [100_000]).num_rows == 1000
    assert not _offer(RowSample(1000, seed=4), [100_000]).equals(one)
    assert _offer(RowSample(50, seed=0), [20]).num_rows == 20  # small files: every row
    assert RowSample(5).table() is None


def test_prefetch_keeps_order_and_raises_the_workers_error():
    assert list(prefetch(iter(range(50)), depth=2)) == list(range(50))

    def failing():
        yield 1
        raise FileLevelError("corrupt gzip data: boom")

    got = []
    with pytest.raises(FileLevelError, match="boom"):
        got.extend(prefetch(failing()))
    assert got == [1]


def test_write_behind_runs_in_order_and_reports_the_first_error():
    done = []
    behind = WriteBehind()
    for i in range(20):
        behind.submit(done.append, i)
    behind.wait()
    assert done == list(range(20))

    def boom(_):
        raise OSError("disk full")

    behind.submit(boom, 0)
    behind.submit(done.append, 99)  # skipped: an error came first
    with pytest.raises(OSError, match="disk full"):
        behind.wait()
    behind.close()
    assert 99 not in done
