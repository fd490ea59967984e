"""Batch scoring keeps every input row in order, streams to the same scores as one pass, writes
atomically and deterministically, and fails a bad file alone."""
from __future__ import annotations

import hashlib

import numpy as np
import pyarrow.parquet as pq
import pytest

from components.serve.scoring import score_file


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_row_in_input_order_with_scores_and_original_columns(tiny_fit, shared_data, names, tmp_path):
    result = score_file(tiny_fit.detector, shared_data / names["benign"], tmp_path, "benign", "7")
    assert result.status == "ok"
    table = pq.read_table(result.output)
    assert table.num_rows == 9998  # ingest quarantined 7 rows for training; scoring keeps them all
    assert table.column("row_number").to_pylist() == list(range(1, 9999))
    assert table.column_names[:2] == ["destination_port", "flow_duration"]  # canonical names
    assert table.column_names[-7:] == ["anomaly_score", "is_anomaly", "top_feature_1", "top_feature_2",
                                       "top_feature_3", "model_name", "model_version"]
    scores = table.column("anomaly_score").to_numpy()
    assert np.isfinite(scores).all()
    problems = [p for p in table.column("input_problem").to_pylist() if p]
    assert len(problems) == 7 and all("flow_packets_s: infinite" in p for p in problems)  # the Infinity rows, scored
    assert set(table.column("model_version").to_pylist()) == {"7"}
    assert result.stats.flows == 9998 and result.stats.anomalies == int(table.column("is_anomaly").to_numpy().sum())


def test_batches_of_any_size_give_the_scores_of_one_pass(tiny_fit, shared_data, names, tmp_path):
    one = score_file(tiny_fit.detector, shared_data / names["ddos"], tmp_path / "one", "ddos", "1")
    small = score_file(tiny_fit.detector, shared_data / names["ddos"], tmp_path / "small", "ddos", "1",
                       batch_rows=37)
    a, b = pq.read_table(one.output), pq.read_table(small.output)
    assert a.num_rows == b.num_rows == 1000
    np.testing.assert_allclose(a.column("anomaly_score").to_numpy(), b.column("anomaly_score").to_numpy(),
                               rtol=1e-5)
    assert a.drop_columns(["anomaly_score", "is_anomaly"]).equals(b.drop_columns(["anomaly_score", "is_anomaly"]))


def test_running_twice_gives_identical_files(tiny_fit, shared_data, names, tmp_path):
    first = score_file(tiny_fit.detector, shared_data / names["portscan"], tmp_path, "scan", "1")
    before = digest(tmp_path / "scan.scored.parquet")
    again = score_file(tiny_fit.detector, shared_data / names["portscan"], tmp_path, "scan", "1")
    assert first.output == again.output and digest(tmp_path / "scan.scored.parquet") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.scored.parquet"]  # no temp file left


def test_broken_lines_keep_their_place_and_get_a_score(tiny_fit, shared_data, names, tmp_path):
    lines = (shared_data / names["ddos"]).read_bytes().split(b"\n")[:41]
    lines[5] = lines[5].rsplit(b",", 3)[0]  # too few fields
    fields = lines[9].split(b",")
    fields[10] = b"lots"  # text in a numeric column
    lines[9] = b",".join(fields)
    path = tmp_path / "broken.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = score_file(tiny_fit.detector, path, tmp_path, "broken", "1")
    table = pq.read_table(result.output)
    assert table.column("row_number").to_pylist() == list(range(1, 41))
    problems = table.column("input_problem").to_pylist()
    assert problems[4].startswith("wrong field count") and "not a number" in problems[8]
    assert np.isfinite(table.column("anomaly_score").to_numpy()).all()


def test_a_file_that_cannot_be_scored_fails_alone_with_its_reason(tiny_fit, shared_data, tmp_path):
    readme = score_file(tiny_fit.detector, shared_data / "README.md", tmp_path, "readme", "1")
    assert readme.status == "failed" and "unknown header variant" in readme.error
    missing = score_file(tiny_fit.detector, tmp_path / "nope.csv", tmp_path, "nope", "1")
    assert missing.status == "failed" and "not found" in missing.error
    assert list(tmp_path.glob("*.parquet")) == []


def test_a_crash_mid_file_leaves_no_partial_output(tiny_fit, shared_data, names, tmp_path, monkeypatch):
    from components.serve import scoring

    calls = {"n": 0}
    real = scoring._write_scored

    def crash_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(scoring, "_write_scored", crash_on_second)
    with pytest.raises(RuntimeError, match="killed"):
        score_file(tiny_fit.detector, shared_data / names["ddos"], tmp_path, "ddos", "1", batch_rows=100)
    assert list(tmp_path.iterdir()) == []


def test_a_24_hour_file_that_looked_12_hour_at_first_is_scored_again_on_24_hours(
        tiny_fit, shared_data, names, tmp_path):
    """Hours 1-7 first (read as afternoon), 13-23 later: the file is scored again on 24 hours,
    every row once, with its own times."""
    lines = (shared_data / names["ddos"]).read_text().splitlines()[:81]
    column = lines[0].split(",").index("Timestamp")
    rows = []
    for i, line in enumerate(lines[1:]):
        fields = line.split(",")
        fields[column] = f"7/7/2017 {3 if i < 40 else 15}:{i % 60:02d}"
        rows.append(",".join(fields))
    path = tmp_path / "night.csv"
    path.write_text("\n".join([lines[0], *rows]) + "\n")
    result = score_file(tiny_fit.detector, path, tmp_path / "out", "night", "1", batch_rows=20)
    assert result.status == "ok"
    table = pq.read_table(result.output)
    assert table.column("row_number").to_pylist() == list(range(1, 81))
    hours = [t.hour for t in table.column("timestamp").to_pylist()]
    assert hours == [3] * 40 + [15] * 40
    assert np.isfinite(table.column("anomaly_score").to_numpy()).all()


def test_a_write_error_on_the_writer_thread_fails_the_file_and_leaves_nothing(
        tiny_fit, shared_data, names, tmp_path, monkeypatch):
    from components.data.outputs import AtomicParquetWriter

    real = AtomicParquetWriter.write
    calls = {"n": 0}

    def disk_full(self, table):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(self, table)

    monkeypatch.setattr(AtomicParquetWriter, "write", disk_full)
    result = score_file(tiny_fit.detector, shared_data / names["ddos"], tmp_path, "ddos", "1", batch_rows=100)
    assert (result.status, result.error, result.transient) == ("failed", "I/O error: No space left on device", True)
    assert list(tmp_path.iterdir()) == []


def test_the_model_runs_on_one_torch_thread_fewer_and_the_setting_comes_back(tiny_fit, shared_data, names, tmp_path,
                                                                            monkeypatch):
    import torch

    from components.detect.flow_scores import FlowScorer

    seen = []
    feed = FlowScorer.feed

    def spy(self, x):
        seen.append(torch.get_num_threads())
        return feed(self, x)

    monkeypatch.setattr(FlowScorer, "feed", spy)
    before = torch.get_num_threads()
    result = score_file(tiny_fit.detector, shared_data / names["ddos"], tmp_path, "ddos", "1")
    assert result.status == "ok" and seen and set(seen) == {max(1, before - 1)}
    assert torch.get_num_threads() == before
