"""Ingest on the real CIC-IDS2017 excerpts and on small hand-made bad files (one test each)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.data.contract import load_contract
from components.data.ingest import IngestConfig, ingest_file, ingest_paths
from components.data.inputs import discover_inputs
from components.data.readers import sha256_file

MLCVE = "friday-afternoon-benign-head.MachineLearningCVE.csv"
TL_BENIGN = "friday-afternoon-benign-head.TrafficLabelling.csv"
DDOS = "friday-ddos-1000.TrafficLabelling.csv"
PORTSCAN = "friday-portscan-1000.TrafficLabelling.csv"
WEEK_SAMPLE = "week-benign-sample.CICIDS2017_sample.csv"


def cfg(tmp_path: Path, **kw) -> IngestConfig:
    return IngestConfig(out=tmp_path / "out", run_gx=kw.pop("run_gx", False), **kw)


def real_lines(shared_data: Path, name: str = DDOS, rows: int = 5) -> list[bytes]:
    """Header + the first ``rows`` data lines of a real file, as raw bytes (no line ends)."""
    with open(shared_data / name, "rb") as fh:
        lines = fh.read(400_000).split(b"\n")
    return [line.rstrip(b"\r") for line in lines[: rows + 1]]


def write(tmp_path: Path, name: str, lines: list[bytes], end: bytes = b"\n") -> Path:
    path = tmp_path / name
    path.write_bytes(end.join(lines) + end)
    return path


def with_field(line: bytes, index: int, value: bytes) -> bytes:
    fields = line.split(b",")
    fields[index] = value
    return b",".join(fields)


def curated(tmp_path: Path, stem: str) -> pa.Table:
    return pq.read_table(tmp_path / "out" / "curated" / f"{stem}.parquet")


def quarantine(tmp_path: Path, stem: str) -> pa.Table:
    return pq.read_table(tmp_path / "out" / "quarantine" / f"{stem}.parquet")


# --- the real files ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_run(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("real")
    result = ingest_paths([str(shared_data / "*.csv")],
                          IngestConfig(out=out / "out", run_gx=True, gx_sample_rows=2000))
    return out, result


def test_real_attack_times_are_the_documented_afternoon_times(real_run):
    """DDoS (LOIC) ran 15:56-16:16 and PortScan 13:55-14:35 on 7/7/2017; the files write them on a
    12-hour clock ("3:56"), which ingest reads back as afternoon."""
    out, _ = real_run
    ddos = pq.read_table(out / "out" / "curated" / "friday-ddos-1000.TrafficLabelling.parquet")
    scan = pq.read_table(out / "out" / "curated" / "friday-portscan-1000.TrafficLabelling.parquet")
    ddos_hours = {t.strftime("%H:%M") for t in ddos["timestamp"].to_pylist()}
    assert ddos_hours == {"15:56"}
    scan_times = [t.strftime("%H:%M") for t in scan["timestamp"].to_pylist()]
    assert min(scan_times) == "13:05" and max(scan_times) == "14:51"


def test_synthetic_day_round_trips_time_order(tmp_path):
    """synth writes the 12-hour clock of the originals; ingest gives back the generator's times."""
    from components.synth import SynthConfig, synth_frame, write_days

    cfg_synth = SynthConfig(rows=800, seed=3, variant="TrafficLabelling", format="csv", attacks=None,
                            days=["monday"])
    [path] = list(write_days(cfg_synth, tmp_path / "raw"))
    report = ingest_file(path, cfg(tmp_path))
    assert report.ok
    got = curated(tmp_path, path.stem).to_pandas()
    expected = synth_frame(800, seed=3, day="monday")
    kept = expected.iloc[got["row_number"].to_numpy() - 1]
    assert (got["timestamp"].to_numpy() == kept["timestamp"].dt.floor("min").to_numpy()).all()
    assert got["timestamp"].is_monotonic_increasing
    assert got["timestamp"].dt.hour.max() >= 13


def test_real_files_counts_add_up_exactly(real_run):
    _, result = real_run
    got = {Path(r.source).name: (r.status, r.rows_in, r.rows_curated, r.rows_quarantined)
           for r in result.reports}
    # MLCVE: 13 Infinity + 1 NaN sit in 7 rows (6 rows with two Infinity, 1 row NaN + Infinity);
    # the default policy keeps them (values null, as a night scores them): nothing quarantined.
    known = {
        MLCVE: ("ok", 9998, 9998, 0),
        TL_BENIGN: ("ok", 299, 299, 0),
        DDOS: ("ok", 1000, 1000, 0),
        PORTSCAN: ("ok", 1000, 1000, 0),
        WEEK_SAMPLE: ("ok", 1686, 1686, 0),  # one row with Infinity rates, kept
    }
    assert {name: got[name] for name in known} == known
    for r in result.reports:  # files added to ../shared later must add up too
        assert r.status == "ok", (r.source, r.error)
        assert r.rows_in == r.rows_curated + r.rows_quarantined


def test_real_files_unusable_values_are_kept_as_null_and_named(real_run):
    """Default ``keep``: the Infinity/NaN rates become null in their row, which stays in place with
    ``input_problem`` naming them: the same rule nightly scoring applies to the same row."""
    out, result = real_run
    by_name = {Path(r.source).name: r for r in result.reports}
    report = by_name[MLCVE]
    assert report.quarantine_reasons == {}
    assert report.nulled_values == {"flow_bytes_s": 7, "flow_packets_s": 7}
    assert report.inf_counts["flow_bytes_s"] == 6
    assert report.inf_counts["flow_packets_s"] == 7
    assert report.null_counts["flow_bytes_s"] == 1
    table = pq.read_table(out / "out" / "curated" / f"{Path(MLCVE).stem}.parquet")
    problems = table.filter(pa.compute.is_valid(table["input_problem"]))
    assert problems.num_rows == 7
    assert problems["flow_bytes_s"].null_count == 7 and problems["flow_packets_s"].null_count == 7
    nan_row = problems.filter(pa.compute.equal(problems["row_number"], 6797))  # line 6798 of the file
    assert nan_row["input_problem"].to_pylist() == ["flow_bytes_s: NaN; flow_packets_s: infinite"]
    assert nan_row["destination_port"].to_pylist() == [36812]
    assert table["input_problem"].null_count == table.num_rows - 7


def test_quarantine_policy_sets_unusable_rows_aside(shared_data, tmp_path):
    report = ingest_file(shared_data / MLCVE, cfg(tmp_path, invalid_values="quarantine"))
    assert (report.rows_in, report.rows_curated, report.rows_quarantined) == (9998, 9991, 7)
    assert report.quarantine_reasons == {
        "flow_bytes_s: NaN; flow_packets_s: infinite": 1,
        "flow_bytes_s: infinite; flow_packets_s: infinite": 6,
    }
    q = pq.read_table(tmp_path / "out" / "quarantine" / f"{Path(MLCVE).stem}.parquet")
    nan_row = q.filter(pa.compute.equal(q["quarantine_reason"],
                                        "flow_bytes_s: NaN; flow_packets_s: infinite"))
    assert nan_row["row_number"].to_pylist() == [6797]
    assert nan_row["flow_bytes_s"].to_pylist() == ["NaN"]
    assert nan_row["destination_port"].to_pylist() == ["36812"]


def test_real_files_canonical_typed_columns(real_run, shared_data):
    out, result = real_run
    contract = load_contract()
    mlcve = pq.read_table(out / "out" / "curated" / f"{Path(MLCVE).stem}.parquet")
    tl = pq.read_table(out / "out" / "curated" / f"{Path(DDOS).stem}.parquet")
    feature_names = contract.feature_names
    assert mlcve.column_names == ["destination_port"] + feature_names + ["label", "source_file", "row_number",
                                                                         "input_problem"]
    assert tl.column_names[:7] == ["flow_id", "source_ip", "source_port", "destination_ip",
                                   "destination_port", "protocol", "timestamp"]
    assert "fwd_header_length_1" in tl.column_names
    assert tl.schema.field("timestamp").type == pa.timestamp("ms")
    assert tl.schema.field("destination_port").type == pa.int64()
    assert tl.schema.field("flow_duration").type == pa.float64()
    assert tl["timestamp"][0].as_py().isoformat() == "2017-07-07T15:56:00"  # "3:56" on a 12-hour clock
    assert set(tl["label"].to_pylist()) == {"DDoS"}
    assert set(mlcve["label"].to_pylist()) == {"BENIGN"}
    assert mlcve["source_file"][0].as_py() == MLCVE
    assert mlcve["row_number"].to_pylist()[:3] == [1, 2, 3]
    assert tl["row_number"].to_pylist() == list(range(1, 1001))
    variants = {Path(r.source).name: r.variant for r in result.reports}
    assert (variants[MLCVE], variants[DDOS]) == ("MachineLearningCVE", "TrafficLabelling")
    assert variants[WEEK_SAMPLE] == "other"  # the cleaned sample: 77 features, no port, no identifiers


def test_real_files_manifest_and_gx(real_run):
    out, _ = real_run
    manifest = json.loads((out / "out" / "manifest.json").read_text())
    assert manifest["contract_version"] == load_contract().version
    entry = manifest["files"][0]
    for key in ("source", "sha256", "status", "error", "rows_in", "rows_curated", "rows_quarantined",
                "first_timestamp", "timestamp_clock", "timestamps_unparsable", "validation_sample_rows"):
        assert key in entry
    assert len(entry["sha256"]) == 64
    by_name = {Path(f["source"]).name: f for f in manifest["files"]}
    assert by_name[DDOS]["sha256"] == sha256_file(Path(by_name[DDOS]["source"]))  # hashed while read
    assert all(f["validation_success"] is True for f in manifest["files"])
    assert {name: f["validation_sample_rows"] for name, f in by_name.items() if name in (MLCVE, DDOS)} \
        == {MLCVE: 2000, DDOS: 1000}  # at most gx_sample_rows, drawn across the whole file
    assert {name: (f["timestamp_clock"], f["first_timestamp"]) for name, f in by_name.items()
            if name in (MLCVE, DDOS, PORTSCAN)} == {
        MLCVE: (None, None), DDOS: ("12h", "2017-07-07T15:56:00"), PORTSCAN: ("12h", "2017-07-07T13:05:00")}
    assert manifest["order"]["guessed"] is True  # excerpts: no day in the names, not all timestamped
    report = json.loads((out / "out" / "validation" / f"{Path(MLCVE).stem}.json").read_text())
    assert report["summary"]["success"] is True
    assert (report["summary"]["sample_rows"], report["summary"]["rows_offered"]) == (2000, 9998)
    assert report["gx_results"][0]["results"][1]["result"]["element_count"] == 2000
    assert (out / "out" / "validation" / "data_docs" / "index.html").is_file()


def test_rerun_is_byte_identical(shared_data, tmp_path):
    paths = [str(shared_data / DDOS), str(shared_data / TL_BENIGN)]
    first = ingest_paths(paths, cfg(tmp_path))
    snapshot = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    second = ingest_paths(paths, cfg(tmp_path))
    assert first.manifest == second.manifest
    after = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert after == snapshot
    assert not [p for p in after if p.name.endswith(".tmp")]


def test_small_blocks_keep_row_numbers_and_counts(shared_data, tmp_path):
    """Many record batches (and a bad line at a block edge) must number rows like one batch."""
    lines = real_lines(shared_data, MLCVE, rows=300)
    lines[100] = lines[100][:40]
    path = write(tmp_path, "blocks.csv", lines, end=b"\r\n")
    report = ingest_file(path, cfg(tmp_path, block_size=4096, invalid_values="quarantine"))
    # row 66 of the real file has Infinity in both rate columns; row 100 was cut short above
    assert (report.rows_in, report.rows_curated, report.rows_quarantined) == (300, 298, 2)
    small_blocks = curated(tmp_path, "blocks")
    assert small_blocks["row_number"].to_pylist() == [n for n in range(1, 301) if n not in (66, 100)]
    assert quarantine(tmp_path, "blocks")["row_number"].to_pylist() == [66, 100]
    ingest_file(path, cfg(tmp_path, invalid_values="quarantine"))  # one block
    assert curated(tmp_path, "blocks").equals(small_blocks)


# --- file-level failures ----------------------------------------------------------------------

def test_empty_file_fails(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    report = ingest_file(path, cfg(tmp_path))
    assert (report.status, report.error) == ("failed", "empty file (0 bytes)")
    assert not (tmp_path / "out" / "curated" / "empty.parquet").exists()


def test_header_only_fails(shared_data, tmp_path):
    path = write(tmp_path, "header.csv", real_lines(shared_data, rows=0))
    report = ingest_file(path, cfg(tmp_path))
    assert (report.status, report.error) == ("failed", "header only, no data rows")


def test_binary_file_named_csv_fails(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(bytes(range(256)) * 64)
    report = ingest_file(path, cfg(tmp_path))
    assert (report.status, report.error) == ("failed", "binary content (NUL bytes), not a CSV file")


def test_unknown_header_variant_fails(tmp_path):
    path = write(tmp_path, "other.csv", [b"a,b,c,Label", b"1,2,3,BENIGN"])
    report = ingest_file(path, cfg(tmp_path))
    assert report.status == "failed"
    assert report.error.startswith("unknown header variant: 1 of 4 columns are in the contract")


def test_missing_required_column_fails(shared_data, tmp_path):
    lines = [b",".join(l.split(b",")[:7] + l.split(b",")[8:]) for l in real_lines(shared_data)]
    report = ingest_file(write(tmp_path, "nodur.csv", lines), cfg(tmp_path))
    assert (report.status, report.error) == ("failed", "missing required column: flow_duration")


def test_missing_label_column_fails(shared_data, tmp_path):
    lines = [l.rsplit(b",", 1)[0] for l in real_lines(shared_data)]
    report = ingest_file(write(tmp_path, "nolabel.csv", lines), cfg(tmp_path))
    assert (report.status, report.error) == ("failed", "missing required column: label")


def test_failed_file_removes_stale_outputs(shared_data, tmp_path):
    path = write(tmp_path, "day.csv", real_lines(shared_data))
    assert ingest_file(path, cfg(tmp_path)).status == "ok"
    path.write_bytes(b"")
    assert ingest_file(path, cfg(tmp_path)).status == "failed"
    assert not (tmp_path / "out" / "curated" / "day.parquet").exists()


def test_file_that_disappears_fails_and_others_go_on(shared_data, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder, "a.csv", real_lines(shared_data))
    write(folder, "b.csv", real_lines(shared_data))
    listed = discover_inputs([str(folder)]).files
    (folder / "a.csv").unlink()  # gone between listing and reading
    result = ingest_paths([str(p.path) for p in listed], cfg(tmp_path))
    got = [(Path(r.source).name, r.status, r.error) for r in result.reports]
    # files with curated rows come first, in capture order; failed ones follow in the given order
    assert got == [("b.csv", "ok", None),
                   ("a.csv", "failed", "file not found (missing or removed before it could be read)")]
    assert (result.reports[1].rows_in, result.reports[1].sha256) == (0, None)
    assert not result.ok
    assert result.reports[1].one_line() == (
        "a.csv: failed, rows in 0, curated 0, quarantined 0, "
        "file not found (missing or removed before it could be read)")


def test_same_file_twice_is_ingested_once(shared_data, tmp_path):
    path = write(tmp_path, "day.csv", real_lines(shared_data))
    result = ingest_paths([str(path), str(tmp_path / "." / "day.csv")], cfg(tmp_path))
    assert len(result.reports) == 1
    assert result.manifest["notes"] == [f"{tmp_path / '.' / 'day.csv'}: given more than once, ingested once"]


# --- row-level problems -----------------------------------------------------------------------

def test_truncated_last_line_is_quarantined(shared_data, tmp_path):
    lines = real_lines(shared_data)
    lines[-1] = lines[-1][:60]
    path = tmp_path / "trunc.csv"
    path.write_bytes(b"\n".join(lines))  # no final newline, as when a copy is cut off
    report = ingest_file(path, cfg(tmp_path))
    assert (report.status, report.rows_in, report.rows_curated, report.rows_quarantined) == ("ok", 5, 4, 1)
    q = quarantine(tmp_path, "trunc")
    fields = lines[-1].count(b",") + 1
    assert q["quarantine_reason"].to_pylist() == [f"wrong field count: {fields} of 85"]
    assert q["raw_line"].to_pylist() == [lines[-1].decode()]
    assert q["row_number"].to_pylist() == [5]


def test_extra_unknown_column_is_left_out_and_noted(shared_data, tmp_path):
    lines = real_lines(shared_data)
    lines = [lines[0] + b",Comment"] + [l + b",hello" for l in lines[1:]]
    report = ingest_file(write(tmp_path, "extra.csv", lines), cfg(tmp_path))
    assert (report.status, report.rows_curated) == ("ok", 5)
    assert report.notes == ["unknown columns left out of curated: 'Comment'"]
    assert "comment" not in curated(tmp_path, "extra").column_names


def test_text_in_numeric_column_is_quarantined(shared_data, tmp_path):
    lines = real_lines(shared_data)
    lines[2] = with_field(lines[2], 7, b"oops")  # Flow Duration
    report = ingest_file(write(tmp_path, "text.csv", lines), cfg(tmp_path, invalid_values="quarantine"))
    assert (report.rows_in, report.rows_curated, report.rows_quarantined) == (5, 4, 1)
    q = quarantine(tmp_path, "text")
    assert q["quarantine_reason"].to_pylist() == ["flow_duration: not a number"]
    assert q["flow_duration"].to_pylist() == ["oops"]
    assert q["row_number"].to_pylist() == [2]


def _inf_nan_file(shared_data, tmp_path) -> Path:
    lines = real_lines(shared_data)
    lines[1] = with_field(lines[1], 20, b"Infinity")  # Flow Bytes/s
    lines[3] = with_field(lines[3], 21, b"NaN")  # Flow Packets/s
    lines[4] = with_field(lines[4], 21, b"")  # empty field
    return write(tmp_path, "invalid.csv", lines)


def test_text_in_a_feature_is_kept_as_null_by_default(shared_data, tmp_path):
    lines = real_lines(shared_data)
    lines[2] = with_field(lines[2], 7, b"oops")  # Flow Duration
    report = ingest_file(write(tmp_path, "text.csv", lines), cfg(tmp_path))
    assert (report.rows_in, report.rows_curated, report.rows_quarantined) == (5, 5, 0)
    table = curated(tmp_path, "text")
    assert table["flow_duration"].to_pylist()[1] is None
    assert table["input_problem"].to_pylist() == [None, "flow_duration: not a number", None, None, None]


def test_inf_and_nan_are_kept_as_null_by_default(shared_data, tmp_path):
    report = ingest_file(_inf_nan_file(shared_data, tmp_path), cfg(tmp_path))
    assert (report.rows_in, report.rows_curated, report.rows_quarantined) == (5, 5, 0)
    assert report.nulled_values == {"flow_bytes_s": 1, "flow_packets_s": 2}
    table = curated(tmp_path, "invalid")
    assert table["input_problem"].to_pylist() == ["flow_bytes_s: infinite", None, "flow_packets_s: NaN",
                                                  None, None]  # an empty field is no news
    assert table["flow_packets_s"].null_count == 2 and table["flow_bytes_s"].null_count == 1


def test_inf_and_nan_are_quarantined_by_that_policy(shared_data, tmp_path):
    report = ingest_file(_inf_nan_file(shared_data, tmp_path), cfg(tmp_path, invalid_values="quarantine"))
    assert (report.rows_in, report.rows_curated, report.rows_quarantined) == (5, 2, 3)
    assert report.quarantine_reasons == {"flow_bytes_s: infinite": 1, "flow_packets_s: NaN": 1,
                                         "flow_packets_s: missing": 1}
    assert quarantine(tmp_path, "invalid")["row_number"].to_pylist() == [1, 3, 4]


def test_inf_and_nan_are_imputed_with_the_batch_median(shared_data, tmp_path):
    path = _inf_nan_file(shared_data, tmp_path)
    report = ingest_file(path, cfg(tmp_path, invalid_values="impute"))
    assert (report.rows_in, report.rows_curated, report.rows_quarantined) == (5, 5, 0)
    assert report.imputed_values == {"flow_bytes_s": 1, "flow_packets_s": 2}
    table = curated(tmp_path, "invalid")
    packets = [float(l.split(b",")[21]) for l in real_lines(shared_data)[1:]]
    median = sorted([packets[0], packets[1], packets[4]])[1]  # rows 3 and 4 were invalid
    assert table["flow_packets_s"].to_pylist() == [packets[0], packets[1], median, median, packets[4]]
    assert all(math.isfinite(v) for v in table["flow_bytes_s"].to_pylist())
    assert not (tmp_path / "out" / "quarantine" / "invalid.parquet").exists()


def test_duplicated_header_line_inside_file_is_quarantined(shared_data, tmp_path):
    lines = real_lines(shared_data)
    lines.insert(3, lines[0])
    report = ingest_file(write(tmp_path, "dup.csv", lines), cfg(tmp_path))
    assert (report.rows_in, report.rows_curated, report.rows_quarantined) == (6, 5, 1)
    assert report.quarantine_reasons == {"repeated header line": 1}
    assert quarantine(tmp_path, "dup")["row_number"].to_pylist() == [3]


def test_label_outside_the_set_is_quarantined(shared_data, tmp_path):
    lines = real_lines(shared_data)
    lines[5] = lines[5].rsplit(b",", 1)[0] + b",Evil Traffic"
    report = ingest_file(write(tmp_path, "label.csv", lines), cfg(tmp_path))
    assert (report.rows_curated, report.rows_quarantined) == (4, 1)
    assert report.quarantine_reasons == {"label: unknown 'Evil Traffic'": 1}
    assert quarantine(tmp_path, "label")["label"].to_pylist() == ["Evil Traffic"]


def test_out_of_range_is_quarantined_but_an_unparsable_timestamp_keeps_its_row(shared_data, tmp_path):
    lines = real_lines(shared_data)
    lines[1] = with_field(lines[1], 2, b"70000")  # Source Port
    lines[2] = with_field(lines[2], 6, b"yesterday")  # Timestamp: not a model input, row kept
    lines[3] = with_field(lines[3], 8, b"-3")  # Total Fwd Packets
    report = ingest_file(write(tmp_path, "range.csv", lines), cfg(tmp_path, invalid_values="quarantine"))
    assert report.quarantine_reasons == {"source_port: above max 65535": 1,
                                         "total_fwd_packets: below min 0": 1}
    assert (report.rows_in, report.rows_curated, report.rows_quarantined) == (5, 3, 2)
    assert report.timestamps_unparsable == 1
    table = curated(tmp_path, "range")
    assert table["row_number"].to_pylist() == [2, 4, 5]
    assert table["timestamp"].to_pylist()[0] is None


@pytest.mark.parametrize("dash", [b"\x96", "\u2013".encode(), b"\xc2\x96", "\ufffd".encode()],
                         ids=["cp1252", "u2013", "c2-96", "ufffd"])
def test_web_attack_label_encodings_normalise(shared_data, tmp_path, dash):
    lines = real_lines(shared_data, rows=2)
    lines[1] = lines[1].rsplit(b",", 1)[0] + b",Web Attack " + dash + b" Brute Force"
    lines[2] = lines[2].rsplit(b",", 1)[0] + b",Web Attack " + dash + b" XSS"
    report = ingest_file(write(tmp_path, "web.csv", lines), cfg(tmp_path))
    assert (report.status, report.rows_curated) == ("ok", 2)
    assert curated(tmp_path, "web")["label"].to_pylist() == ["Web Attack - Brute Force",
                                                             "Web Attack - XSS"]


# --- other inputs -----------------------------------------------------------------------------

def test_parquet_input_with_rerelease_names(shared_data, tmp_path):
    """A parquet re-release: renamed columns, numbers already typed, no identifiers."""
    import pandas as pd

    df = pd.read_csv(shared_data / DDOS, nrows=50).drop(
        columns=["Flow ID", "Source IP", "Source Port", "Destination IP", "Timestamp"])
    df = df.rename(columns={"Total Fwd Packets": "Tot Fwd Pkts", "Flow Bytes/s": "Flow Byts/s",
                            "Average Packet Size": "Avg Packet Size", "Label": "Label"})
    df.loc[3, "Flow Byts/s"] = float("inf")
    path = tmp_path / "ddos-rerelease.parquet"
    df.to_parquet(path)
    report = ingest_file(path, cfg(tmp_path, invalid_values="quarantine"))
    assert (report.status, report.rows_in, report.rows_curated, report.rows_quarantined) == ("ok", 50, 49, 1)
    table = curated(tmp_path, "ddos-rerelease")
    assert {"total_fwd_packets", "flow_bytes_s", "average_packet_size"} <= set(table.column_names)
    assert table.schema.field("destination_port").type == pa.int64()
    assert quarantine(tmp_path, "ddos-rerelease")["quarantine_reason"].to_pylist() == ["flow_bytes_s: infinite"]


def test_folder_and_glob_inputs(shared_data, tmp_path):
    folder = discover_inputs([str(shared_data)]).files
    globbed = discover_inputs([str(shared_data / "*.TrafficLabelling.csv")]).files
    names = [p.name for p in folder]
    assert names == sorted(names)  # a stable order
    assert set(names) >= {MLCVE, TL_BENIGN, DDOS, PORTSCAN, WEEK_SAMPLE}
    assert all(n.endswith((".csv", ".parquet")) for n in names)  # README.md is not an input
    assert [p.name for p in globbed] == sorted([TL_BENIGN, DDOS, PORTSCAN])
    assert discover_inputs([str(tmp_path / "*.nothing")]).notes == [
        f"{tmp_path / '*.nothing'}: pattern matched no files"]


def test_outputs_are_written_atomically(shared_data, tmp_path, monkeypatch):
    """A crash mid-file leaves neither a partial curated file nor a temp file behind."""
    import components.data.ingest as ingest_mod

    def boom(*args, **kwargs):
        raise RuntimeError("crash")

    path = write(tmp_path, "crash.csv", real_lines(shared_data))
    monkeypatch.setattr(ingest_mod, "check_batch", boom)
    with pytest.raises(RuntimeError):
        ingest_file(path, cfg(tmp_path))
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []


# --- capture order ----------------------------------------------------------------------------

def test_manifest_lists_files_in_capture_order_from_their_names(shared_data, tmp_path):
    friday = write(tmp_path, "Friday-WorkingHours-Afternoon-DDos.pcap_ISCX.csv", real_lines(shared_data))
    monday = write(tmp_path, "Monday-WorkingHours.pcap_ISCX.csv", real_lines(shared_data, TL_BENIGN))
    result = ingest_paths([str(friday), str(monday)], cfg(tmp_path))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [Path(f["source"]).name for f in manifest["files"]] == [monday.name, friday.name]
    assert manifest["order"] == {"files": [monday.name, friday.name],
                                 "method": "capture day and part from file names", "guessed": False,
                                 "keys": {monday.name: "monday day", friday.name: "friday afternoon #2"}}
    assert [r.name for r in result.reports] == [monday.name, friday.name]
    assert [f["first_timestamp"] for f in manifest["files"]] == ["2017-07-07T15:30:00",
                                                                 "2017-07-07T15:56:00"]
    assert {f["timestamp_clock"] for f in manifest["files"]} == {"12h"}


def test_without_day_names_first_timestamps_decide(shared_data, tmp_path):
    ddos = write(tmp_path, "ddos.csv", real_lines(shared_data, DDOS))
    scan = write(tmp_path, "scan.csv", real_lines(shared_data, PORTSCAN))  # 13:05, before 15:56
    result = ingest_paths([str(ddos), str(scan)], cfg(tmp_path))
    order = result.manifest["order"]
    assert (order["files"], order["method"], order["guessed"]) == (
        ["scan.csv", "ddos.csv"], "first timestamp of each file", False)
    assert [f["first_timestamp"] for f in result.manifest["files"]] == ["2017-07-07T13:05:00",
                                                                        "2017-07-07T15:56:00"]


def test_otherwise_the_given_order_is_a_guess_that_says_so(shared_data, tmp_path):
    from components.data.capture_order import FileOrder

    b = write(tmp_path, "b.csv", real_lines(shared_data, MLCVE), end=b"\r\n")
    a = write(tmp_path, "a.csv", real_lines(shared_data, MLCVE), end=b"\r\n")
    result = ingest_paths([str(b), str(a)], cfg(tmp_path))
    order = FileOrder(**result.manifest["order"])
    assert (order.files, order.guessed) == (["b.csv", "a.csv"], True)
    assert order.warning().startswith("file order is a guess (order given on the command line)")
