"""Timestamps through ingest: the clock per file from its values, a bad timestamp never costs a row,
first timestamps for capture order, and a file with no valid row is not ok."""
from __future__ import annotations

from components.data.ingest import ingest_file, ingest_paths

DDOS = "friday-ddos-1000.TrafficLabelling.csv"
TL_BENIGN = "friday-afternoon-benign-head.TrafficLabelling.csv"
MLCVE = "friday-afternoon-benign-head.MachineLearningCVE.csv"


def _times(real, stem: str) -> list[str | None]:
    return [t.strftime("%H:%M") if t else None for t in real.curated(stem)["timestamp"].to_pylist()]


def test_real_twelve_hour_file_is_read_as_afternoon(real):
    report = ingest_file(real.shared / DDOS, real.cfg())
    assert (report.timestamp_clock, report.first_timestamp) == ("12h", "2017-07-07T15:56:00")
    assert real.counts(report) == (1000, 1000, 0)


def test_any_header_spelling_gets_the_clock_from_the_values(real):
    """The rule reads values, not the header: lower-case, re-ordered names change nothing."""
    lines = real.lines(TL_BENIGN, rows=20)
    lines[0] = lines[0].lower()
    report = ingest_file(real.write("renamed.csv", lines), real.cfg())
    assert (report.variant, report.timestamp_clock) == ("other", "12h")
    assert set(_times(real, "renamed")) == {"15:30"}  # written "3:30"


def test_a_24_hour_file_is_read_as_written(real):
    lines = real.lines(rows=6)
    for i, clock in enumerate([b"9:10", b"13:05", b"3:30", b"17:45", b"0:15", b"11:00"], start=1):
        lines[i] = real.with_field(lines[i], 6, b"7/7/2017 " + clock)
    report = ingest_file(real.write("day24.csv", lines), real.cfg())
    assert report.timestamp_clock == "24h"
    assert _times(real, "day24") == ["09:10", "13:05", "03:30", "17:45", "00:15", "11:00"]


def test_a_night_capture_is_read_again_on_24_hours(real):
    """Hours 1-7 come first (read as afternoon), then 13-23 prove a 24-hour clock: the file is read
    a second time, and nothing of the first reading survives."""
    lines = real.lines(rows=300)
    for i in range(1, 301):
        lines[i] = real.with_field(lines[i], 6, b"7/7/2017 1:30" if i <= 150 else b"7/7/2017 14:00")
    report = ingest_file(real.write("night.csv", lines), real.cfg(block_size=16_384, run_gx=True))
    assert (report.status, report.timestamp_clock, real.counts(report)) == ("ok", "24h", (300, 300, 0))
    assert _times(real, "night")[0] == "01:30" and _times(real, "night")[-1] == "14:00"
    assert report.validation_sample_rows == 300
    assert not [p for p in (real.tmp / "out").rglob("*.tmp")]


def test_unparsable_and_missing_timestamps_keep_their_rows(real):
    lines = real.lines(rows=8)
    lines[2] = real.with_field(lines[2], 6, b"1499443560")  # re-encoded as epoch seconds
    lines[4] = real.with_field(lines[4], 6, b"2017.07.07 15:56")  # another format
    lines[6] = real.with_field(lines[6], 6, b"")  # missing
    report = ingest_file(real.write("stamps.csv", lines), real.cfg(run_gx=True))
    assert (report.status, real.counts(report)) == ("ok", (8, 8, 0))
    assert report.timestamps_unparsable == 2
    assert report.null_counts["timestamp"] == 1
    assert _times(real, "stamps") == ["15:56", None, "15:56", None, "15:56", None, "15:56", "15:56"]
    assert report.quarantine_reasons == {}
    assert report.failed_expectations == ["expect_column_values_to_not_be_null(timestamp)"]  # GX reports


def test_every_timestamp_unreadable_means_no_clock_and_no_first_timestamp(real):
    lines = real.lines(rows=3)
    for i in (1, 2, 3):
        lines[i] = real.with_field(lines[i], 6, b"%d" % (1499443560 + i))
    report = ingest_file(real.write("epoch.csv", lines), real.cfg())
    assert (real.counts(report), report.timestamps_unparsable) == ((3, 3, 0), 3)
    assert (report.timestamp_clock, report.first_timestamp) == (None, None)


def test_no_timestamp_column_leaves_the_fields_empty(real):
    report = ingest_file(real.write("ml.csv", real.lines(MLCVE, rows=3), end=b"\r\n"), real.cfg())
    assert (report.timestamp_clock, report.first_timestamp, report.timestamps_unparsable) == (None, None, 0)


def test_a_file_with_no_valid_row_is_empty_not_ok(real):
    lines = real.lines(rows=6)
    lines[1:] = [line.replace(b",DDoS", b",Nope") for line in lines[1:]]
    lines[3] = lines[3][:20]
    result = ingest_paths([str(real.write("bad.csv", lines))], real.cfg())
    [report] = result.reports
    assert (report.status, real.counts(report)) == ("empty", (6, 0, 6))
    assert report.error == ("no row passed the contract: all 6 rows quarantined "
                            "(most often \"label: unknown 'Nope'\", 5 rows)")
    assert not result.ok
    assert report.curated is None and not (real.tmp / "out" / "curated" / "bad.parquet").exists()
    assert real.quarantine("bad").num_rows == 6
    assert "bad.csv: empty, rows in 6, curated 0, quarantined 6, no row passed" in report.one_line()
