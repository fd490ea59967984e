"""A file found bad mid-stream fails alone, with a one-line printable reason, and leaves nothing
behind; a bug is not disguised as a read error; a part of a file reads the whole file's clock."""
from __future__ import annotations

import gzip

import pyarrow as pa
import pytest

from components.serve.scoring import one_line_reason, read_failure, score_file


def test_a_truncated_gzip_fails_the_file_with_a_reason_and_leaves_nothing(tiny_fit, shared_data, names, tmp_path):
    whole = gzip.compress((shared_data / names["ddos"]).read_bytes())
    log = tmp_path / "in" / "ddos.csv.gz"
    log.parent.mkdir()
    log.write_bytes(whole[: len(whole) * 2 // 3])  # cut mid-stream: the header and first rows read fine
    out = tmp_path / "out"
    out.mkdir()
    result = score_file(tiny_fit.detector, log, out, "ddos", "1", batch_rows=100)
    assert (result.status, result.transient) == ("failed", False)
    assert result.error == "corrupt gzip data: Compressed file ended before the end-of-stream marker was reached"
    assert list(out.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]


def test_reasons_are_one_printable_line_and_bugs_are_not_read_errors():
    assert one_line_reason(ValueError("bad\x00byte\n\tthere")) == "bad\\x00byte there"
    assert read_failure(pa.ArrowInvalid("Couldn't deserialize thrift: \x0f")) == (
        "corrupt: Couldn't deserialize thrift: \\x0f", False)
    assert read_failure(OSError(5, "Input/output error")) == ("I/O error: Input/output error", True)
    assert read_failure(EOFError("Compressed file ended before the end-of-stream marker was reached"))[1] is False
    for bug in (TypeError("zip() argument 2 is longer than argument 1"), KeyError("x"), MemoryError()):
        assert read_failure(bug) is None  # raised to the flow, which says "internal error"


@pytest.mark.parametrize("decision,shifted", [("24h", False), ("12h", True), (None, True)])
def test_a_decided_clock_reads_early_hours_as_the_whole_file_does(decision, shifted):
    import datetime as dt

    import numpy as np

    from components.data.clock import Clock

    values = pa.array([dt.datetime(2017, 7, 8, 3, 5)], pa.timestamp("ms"))
    read = Clock.decided(decision).read(values, np.array([True]), np.array([False]))
    assert read[0].as_py().hour == (15 if shifted else 3)
