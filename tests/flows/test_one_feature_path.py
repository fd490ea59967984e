"""One path from raw row to score: the registered pyfunc and ``flowae score`` give every row of a
raw file the same score and flag; a file without an optional column is scored as if the column
were at its benign centre and says so; a file without a required input fails alone, in one line."""
from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from flow_test_rows import DDOS, WEEK, champion
from typer.testing import CliRunner

from flows.cli import app


@pytest.fixture
def scored_store(store, real_ingested):
    return store, champion(store, real_ingested)


def _field(line: str, index: int, value: str) -> str:
    fields = line.split(",")
    fields[index] = value
    return ",".join(fields)


def _raw_with_bad_values(shared_data, tmp_path):
    """300 real DDoS lines with the values a night's log may carry and ingest would not keep."""
    lines = (shared_data / DDOS).read_text().splitlines()[:301]
    header = lines[0].split(",")
    col = {name.strip(): i for i, name in enumerate(header)}
    lines[5] = _field(lines[5], col["Flow Bytes/s"], "Infinity")
    lines[6] = _field(lines[6], col["Flow Packets/s"], "NaN")
    lines[7] = _field(lines[7], col["Total Fwd Packets"], "99999999999999999999")  # beyond int64
    lines[8] = _field(lines[8], col["Total Backward Packets"], "-3")  # below min: ingest quarantines
    lines[9] = _field(lines[9], col["Flow Duration"], "oops")
    lines[10] = _field(lines[10], col["Label"], "Evil Traffic")  # ingest always quarantines this row
    lines[11] = _field(lines[11], col["Fwd IAT Total"], "-Infinity")
    path = tmp_path / "night.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_pyfunc_and_flowae_score_give_every_raw_row_the_same_score(scored_store, shared_data, tmp_path):
    raw = _raw_with_bad_values(shared_data, tmp_path)
    result = CliRunner().invoke(app, ["score", str(raw), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    batch = pq.read_table(tmp_path / "out" / "night.scored.parquet").to_pandas()
    model = mlflow.pyfunc.load_model("models:/flowae@champion")
    frame = pd.read_csv(raw)
    assert frame["Total Fwd Packets"].dtype != np.int64  # pandas and arrow typed the file differently
    online = model.predict(frame)
    assert len(online) == len(batch) == 300
    np.testing.assert_array_equal(online["anomaly_score"].to_numpy(), batch["anomaly_score"].to_numpy())
    np.testing.assert_array_equal(online["is_anomaly"].to_numpy(), batch["is_anomaly"].to_numpy())
    assert np.isfinite(batch["anomaly_score"]).all()
    problems = batch["input_problem"].tolist()
    assert problems[4] == "flow_bytes_s: infinite" and problems[5] == "flow_packets_s: NaN"
    assert problems[6] == "total_fwd_packets: above max 9.22337e+18"
    assert problems[7] == "total_backward_packets: below min 0" and problems[8] == "flow_duration: not a number"
    assert batch["total_fwd_packets"].isna().tolist()[6] and batch["total_backward_packets"].isna().tolist()[7]


def _flagged_rate(out) -> float:
    table = pq.read_table(out)
    return float(np.mean(table.column("is_anomaly").to_numpy(zero_copy_only=False)))


def test_a_file_without_optional_columns_is_scored_as_with_them_and_says_so(scored_store, shared_data, tmp_path):
    frame = pd.read_csv(shared_data / WEEK)
    optional = ["Fwd Header Length.1", "Fwd PSH Flags", "Bwd PSH Flags", "Fwd URG Flags", "Bwd URG Flags",
                "Fwd Avg Bytes/Bulk", "Fwd Avg Packets/Bulk", "Fwd Avg Bulk Rate", "Bwd Avg Bytes/Bulk",
                "Bwd Avg Packets/Bulk", "Bwd Avg Bulk Rate"]
    assert set(optional) <= set(frame.columns)
    frame.to_csv(tmp_path / "full.csv", index=False)
    frame.drop(columns=["Fwd Header Length.1"]).to_csv(tmp_path / "no-dup.csv", index=False)
    frame.drop(columns=optional).to_csv(tmp_path / "no-optional.csv", index=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["score", *(str(tmp_path / f) for f in ("full.csv", "no-dup.csv",
                                                                             "no-optional.csv")),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    full, no_dup, no_optional = (_flagged_rate(out / f"{s}.scored.parquet") for s in ("full", "no-dup", "no-optional"))
    assert 0 < full < 0.2  # a rate to compare against, not everything flagged
    assert no_dup == full  # the model dropped the duplicate at fit: nothing it reads is missing
    assert no_optional <= 1.5 * full
    summary = json.loads((out / "summary.json").read_text())
    by_file = {f["source"].rsplit("/", 1)[-1]: f for f in summary["files"]}
    assert by_file["full.csv"]["missing_columns"] == []
    assert by_file["no-dup.csv"]["missing_columns"] == ["fwd_header_length_1"]
    assert by_file["no-dup.csv"]["missing_features"] == []
    assert len(by_file["no-optional.csv"]["missing_columns"]) == 11
    inputs = by_file["no-optional.csv"]["missing_features"]
    assert "fwd_psh_flags" in inputs and "fwd_header_length_1" not in inputs
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: no-")]
    assert warnings[0] == "warning: no-dup.csv: 1 columns missing (fwd_header_length_1); none of them a model input"
    assert warnings[1].startswith("warning: no-optional.csv: 11 columns missing (")
    assert warnings[1].endswith(f"{len(inputs)} of them model inputs, scored at their benign centre: "
                                f"{', '.join(inputs)}")
    run = mlflow.search_runs(experiment_names=[scored_store[0].scoring_experiment], output_format="list")[0]
    assert "no-dup.csv: fwd_header_length_1" in run.data.tags["flowae.missing_columns"]


def test_a_file_without_a_required_input_fails_alone_in_one_line(scored_store, shared_data, tmp_path):
    frame = pd.read_csv(shared_data / DDOS, nrows=50)
    frame.drop(columns=["Flow Duration"]).to_csv(tmp_path / "no-duration.csv", index=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["score", str(tmp_path / "no-duration.csv"), str(shared_data / WEEK),
                                      "--out", str(out)])
    assert result.exit_code == 1
    assert "no-duration.csv: failed, missing required column: flow_duration" in result.stderr
    note = json.loads((out / "quarantine" / "no-duration.json").read_text())
    assert note["error"] == "missing required column: flow_duration"
    assert pq.read_table(out / "week-benign-sample.CICIDS2017_sample.scored.parquet").num_rows == 1686


def test_a_file_missing_more_than_the_allowed_share_of_inputs_fails_naming_them(scored_store, shared_data,
                                                                               tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWAE_MAX_MISSING_FEATURE_SHARE", "0")
    frame = pd.read_csv(shared_data / WEEK, nrows=50)
    frame.drop(columns=["Fwd PSH Flags"]).to_csv(tmp_path / "no-psh.csv", index=False)
    result = CliRunner().invoke(app, ["score", str(tmp_path / "no-psh.csv"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    note = json.loads((tmp_path / "out" / "quarantine" / "no-psh.json").read_text())
    assert note["error"].startswith("1 of the model's ") and note["error"].endswith("(more than 0%): fwd_psh_flags")
