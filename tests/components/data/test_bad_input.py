"""Bad input ends in one clear line and loses no row: every case checks the reason and the counts."""
from __future__ import annotations

import datetime as dt
import hashlib
import random

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.data.ingest import check_out_dir, ingest_file, ingest_paths, plan_outputs

MLCVE = "friday-afternoon-benign-head.MachineLearningCVE.csv"
DDOS = "friday-ddos-1000.TrafficLabelling.csv"


def test_cr_only_line_endings_read_like_universal_newlines(real):
    lines = real.lines(rows=10)
    report = ingest_file(real.write("cr.csv", lines, end=b"\r"), real.cfg())
    assert (report.status, real.counts(report)) == ("ok", (10, 10, 0))
    ingest_file(real.write("lf.csv", lines), real.cfg())
    assert real.curated("cr").drop_columns(["source_file"]).equals(
        real.curated("lf").drop_columns(["source_file"]))


@pytest.mark.parametrize(("nul", "reason"), [(False, "binary content (control bytes), not a CSV file"),
                                             (True, "binary content (NUL bytes), not a CSV file")])
def test_binary_garbage_fails_with_one_line(real, nul, reason):
    rng = random.Random(7)
    data = bytes(rng.randrange(0 if nul else 1, 256) for _ in range(5000))
    path = real.tmp / "garbage.csv"
    path.write_bytes(data)
    report = ingest_file(path, real.cfg())
    assert (report.status, report.error, real.counts(report)) == ("failed", reason, (0, 0, 0))
    assert report.sha256 == hashlib.sha256(data).hexdigest()  # named by content even when failed


def test_rows_with_too_many_or_too_few_fields_are_quarantined_whole(real):
    lines = real.lines(rows=10)
    lines[3] += b",extra"
    lines[6] = lines[6][:50]
    report = ingest_file(real.write("fields.csv", lines), real.cfg())
    assert real.counts(report) == (10, 8, 2)
    assert report.quarantine_reasons == {"wrong field count: 86 of 85": 1, "wrong field count: 3 of 85": 1}
    q = real.quarantine("fields")
    assert q["row_number"].to_pylist() == [3, 6]
    assert q["raw_line"].to_pylist()[1] == lines[6].decode()
    assert real.curated("fields")["row_number"].to_pylist() == [1, 2, 4, 5, 7, 8, 9, 10]


def test_a_bad_row_with_a_cp1252_byte_is_quarantined_not_the_file(real):
    """pyarrow hands bad lines to Python as UTF-8; a cp1252 byte used to fail the whole file."""
    lines = real.lines(rows=10)
    lines[3] = lines[3].rsplit(b",", 1)[0] + b",Web Attack \x96 XSS,extra"
    lines[7] = lines[7][:40] + b"\x96"
    report = ingest_file(real.write("cp1252.csv", lines), real.cfg())
    assert (report.status, real.counts(report)) == ("ok", (10, 8, 2))
    raw_lines = real.quarantine("cp1252")["raw_line"].to_pylist()
    assert raw_lines[0].endswith(",Web Attack \u2013 XSS,extra") and raw_lines[1].endswith("\u2013")


def test_unterminated_quote_mid_file_costs_one_line_not_the_rest(real):
    lines = real.lines(rows=20)
    lines[5] = b'"' + lines[5]
    lines[12] = lines[12].replace(b",DDoS", b',"DDoS')
    report = ingest_file(real.write("quote.csv", lines), real.cfg(block_size=4096))
    assert real.counts(report) == (20, 18, 2)
    assert report.quarantine_reasons == {"unterminated quote": 2}
    q = real.quarantine("quote")
    assert q["row_number"].to_pylist() == [5, 12]
    assert q["raw_line"].to_pylist()[0] == lines[5].decode()
    assert real.curated("quote")["row_number"].to_pylist() == [n for n in range(1, 21) if n not in (5, 12)]


def test_well_quoted_fields_are_read(real):
    lines = real.lines(rows=3)
    lines[2] = lines[2].replace(b",DDoS", b',"DDoS"')
    report = ingest_file(real.write("quoted.csv", lines), real.cfg())
    assert (report.status, real.counts(report)) == ("ok", (3, 3, 0))


@pytest.mark.parametrize(("index", "reason", "policy"), [
    (2, "source_port: above max 65535", "keep"),  # an int64 identifier: always set aside
    (8, "total_fwd_packets: above max 9.22337e+18", "quarantine"),  # a count: beyond int64 is not a count
])
def test_an_integer_beyond_int64_quarantines_the_row(real, index, reason, policy):
    lines = real.lines(rows=10)
    lines[4] = real.with_field(lines[4], index, b"99999999999999999999")
    report = ingest_file(real.write("big.csv", lines), real.cfg(run_gx=True, invalid_values=policy))
    assert (report.status, real.counts(report)) == ("ok", (10, 9, 1))
    assert report.quarantine_reasons == {reason: 1}
    assert report.validation_sample_rows == 10


def test_a_feature_beyond_int64_is_kept_as_null_by_default(real):
    """The night's rule: the row stays, the count becomes no information, and the row says why."""
    lines = real.lines(rows=10)
    lines[4] = real.with_field(lines[4], 8, b"99999999999999999999")
    report = ingest_file(real.write("big.csv", lines), real.cfg())
    assert (report.status, real.counts(report)) == ("ok", (10, 10, 0))
    assert report.nulled_values == {"total_fwd_packets": 1}
    table = real.curated("big")
    assert table["total_fwd_packets"].to_pylist()[3] is None  # data row 4
    assert table["input_problem"].to_pylist()[3] == "total_fwd_packets: above max 9.22337e+18"
    assert table["input_problem"].null_count == 9


def _ddos_frame(real, rows: int = 20) -> pd.DataFrame:
    return pd.read_csv(real.shared / DDOS, nrows=rows)


def test_parquet_with_a_nested_unknown_column_leaves_it_out_with_a_note(real):
    table = pa.Table.from_pandas(_ddos_frame(real), preserve_index=False)
    table = table.append_column("tags", pa.array([[i, i] for i in range(20)], pa.list_(pa.int64())))
    pq.write_table(table, real.tmp / "nested.parquet")
    report = ingest_file(real.tmp / "nested.parquet", real.cfg())
    assert (report.status, real.counts(report)) == ("ok", (20, 20, 0))
    assert report.notes == ["unknown columns left out of curated: 'tags' (nested list<element: int64>)"]
    assert "tags" not in real.curated("nested").column_names


def test_parquet_with_a_nested_contract_column_fails_with_the_reason(real):
    df = _ddos_frame(real)
    table = pa.Table.from_pandas(df.drop(columns=["Flow Duration"]), preserve_index=False)
    table = table.append_column("Flow Duration", pa.array([{"us": 1}] * 20))
    pq.write_table(table, real.tmp / "nested-dur.parquet")
    report = ingest_file(real.tmp / "nested-dur.parquet", real.cfg())
    assert (report.status, real.counts(report)) == ("failed", (0, 0, 0))
    assert report.error == "column 'Flow Duration' holds nested values (struct<us: int64>), not one value per row"


def test_parquet_with_sub_second_timestamps(real):
    df = _ddos_frame(real)
    base = dt.datetime(2017, 7, 7, 15, 56, 1)
    df["Timestamp"] = [base + dt.timedelta(microseconds=123_456 * i) for i in range(20)]
    df.to_parquet(real.tmp / "subsecond.parquet")  # pandas writes timestamp[ns] / [us]
    report = ingest_file(real.tmp / "subsecond.parquet", real.cfg())
    assert (report.status, real.counts(report), report.timestamp_clock) == ("ok", (20, 20, 0), "24h")
    stamps = real.curated("subsecond")["timestamp"].to_pylist()
    assert stamps[1] == base + dt.timedelta(milliseconds=123)  # cut to the curated unit (ms)
    assert report.first_timestamp == "2017-07-07T15:56:01"


def test_truncated_parquet_fails_with_the_reason(real):
    pq.write_table(pa.Table.from_pandas(_ddos_frame(real), preserve_index=False), real.tmp / "whole.parquet")
    data = (real.tmp / "whole.parquet").read_bytes()
    (real.tmp / "cut.parquet").write_bytes(data[: len(data) // 2])
    report = ingest_file(real.tmp / "cut.parquet", real.cfg())
    assert (report.status, real.counts(report)) == ("failed", (0, 0, 0))
    assert report.error.startswith("not a readable parquet file (truncated or corrupt: ")


@pytest.mark.parametrize("label", [b"ddos", b"DDOS", b"bot"])
def test_known_labels_match_in_any_letter_case(real, label):
    lines = real.lines(rows=4)
    lines[2] = lines[2].replace(b",DDoS", b"," + label)
    report = ingest_file(real.write("case.csv", lines), real.cfg())
    assert real.counts(report) == (4, 4, 0)
    expected = {b"bot": "Bot"}.get(label, "DDoS")
    assert real.curated("case")["label"].to_pylist() == ["DDoS", expected, "DDoS", "DDoS"]


def test_benign_in_any_letter_case(real):
    lines = real.lines(MLCVE, rows=3)
    lines[1] = lines[1].replace(b"BENIGN", b"Benign")
    lines[2] = lines[2].replace(b"BENIGN", b"benign")
    report = ingest_file(real.write("benign.csv", lines, end=b"\r\n"), real.cfg())
    assert real.counts(report) == (3, 3, 0)
    assert real.curated("benign")["label"].to_pylist() == ["BENIGN"] * 3


def test_missing_input_path_fails_and_others_go_on(real):
    good = real.write("good.csv", real.lines())
    result = ingest_paths([str(real.tmp / "nope.csv"), str(good)], real.cfg())
    got = [(r.name, r.status, r.error, real.counts(r)) for r in result.reports]
    assert got == [("good.csv", "ok", None, (5, 5, 0)),
                   ("nope.csv", "failed", "file not found (missing or removed before it could be read)",
                    (0, 0, 0))]


def test_empty_folder_gives_a_note_and_nothing_to_ingest(real):
    (real.tmp / "empty").mkdir()
    planned, notes = plan_outputs([str(real.tmp / "empty")])
    assert planned == []
    assert notes == [f"{real.tmp / 'empty'}: folder has no .csv, .parquet, .gz or .zip files"]


def test_out_naming_a_file_is_refused_before_anything_is_written(real):
    target = real.tmp / "out"
    target.write_text("not a folder")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_out_dir(target)
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_out_dir(target / "sub")
    check_out_dir(real.tmp / "new" / "folder")  # not there yet: fine
    assert target.read_text() == "not a folder"
