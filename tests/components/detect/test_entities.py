"""Hosts to look at: a night of real rows (Friday's benign hosts, the DDoS and PortScan attacker)
scored as one file in timestamp order; the entity table ranks and flags the attacking host.

The detector is trained on the benign MachineLearningCVE file *without* its first 299 rows, which
are the 299 rows of the TrafficLabelling benign file (same flows, row for row): the night's benign
hosts are flows the model never saw."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from components.detect.entities import (
    EntityCalibration,
    EntityTable,
    benign_rank,
    calibrate_entities,
)
from components.jobs import EntityRule
from components.serve.scoring import score_file

BENIGN_HEAD = "friday-afternoon-benign-head.TrafficLabelling.csv"
ATTACKER = "172.16.0.1"


@pytest.fixture(scope="module")
def night_data(shared_data, tmp_path_factory):
    """(ingest folder, detector trained on the unseen-host-free benign rows)."""
    from components.data.ingest import IngestConfig, ingest_paths
    from components.detect.fit import fit_detector
    from components.jobs import DetectorConfig, TrainConfig, TrainJob

    raw = tmp_path_factory.mktemp("raw")
    lines = (shared_data / "friday-afternoon-benign-head.MachineLearningCVE.csv").read_bytes().splitlines(True)
    (raw / "friday-benign-after-299.MachineLearningCVE.csv").write_bytes(b"".join([lines[0], *lines[300:]]))
    out = tmp_path_factory.mktemp("ingested")
    inputs = [str(raw / "friday-benign-after-299.MachineLearningCVE.csv"),
              *(str(shared_data / f) for f in (BENIGN_HEAD, "friday-ddos-1000.TrafficLabelling.csv",
                                               "friday-portscan-1000.TrafficLabelling.csv"))]
    assert ingest_paths(inputs, IngestConfig(out=out, run_gx=False)).ok
    job = TrainJob(data=out, files=("friday-benign-after-299.MachineLearningCVE",),
                   train=TrainConfig(model="mahalanobis_flow", window=1, stride=1, device="cpu", seed=0),
                   detector=DetectorConfig(calibration="quantile", mahalanobis_inputs=False, target_fpr=0.01))
    return out, fit_detector(job, progress=False).detector


def night_file(folder, stems: list[str], target):
    """The curated rows of ``stems`` as one log, in timestamp order (a capture day's night)."""
    table = pa.concat_tables([pq.read_table(folder / "curated" / f"{s}.parquet") for s in stems],
                             promote_options="default")
    table = table.drop_columns([c for c in ("source_file", "row_number") if c in table.column_names])
    table = table.take(pc.sort_indices(table, sort_keys=[("timestamp", "ascending")]))
    pq.write_table(table, target)
    return target


def report(detector, log, out, budget=1.0):
    result = score_file(detector, log, out, log.stem, "1")
    assert result.status == "ok", result.error
    return result.stats.entity_report(budget=budget, max_rate=0.05)


def test_the_attacking_host_leads_the_night_and_is_flagged(night_data, tmp_path):
    folder, detector = night_data
    stems = ["friday-afternoon-benign-head.TrafficLabelling", "friday-ddos-1000.TrafficLabelling",
             "friday-portscan-1000.TrafficLabelling"]
    hosts = report(detector, night_file(folder, stems, tmp_path / "friday.parquet"), tmp_path)["hosts"]
    top = hosts["table"][0]
    assert top["entity"] == ATTACKER and top["flagged"]
    assert top["flows"] == 2000 and top["destination_ports"] > 100  # the scan touched many ports
    assert top["first_seen"] < top["last_seen"]
    benign_flagged = [r["entity"] for r in hosts["table"] if r["flagged"] and r["entity"] != ATTACKER]
    assert len(benign_flagged) <= 1, benign_flagged
    assert hosts["ranked"] >= 3  # 192.168.10.16 (206 flows), .14 (11) and the attacker at least
    assert all(r["flows"] >= hosts["min_flows"] for r in hosts["table"])


def test_a_benign_only_night_flags_at_most_the_budget(night_data, tmp_path):
    folder, detector = night_data
    log = night_file(folder, ["friday-afternoon-benign-head.TrafficLabelling"], tmp_path / "benign.parquet")
    entities = report(detector, log, tmp_path)
    assert entities["hosts"]["ranked"] >= 2
    assert entities["hosts"]["flagged"] <= 1
    assert entities["pairs"]["flagged"] <= 1


def test_a_log_without_identifiers_says_so(night_data, shared_data, tmp_path):
    _, detector = night_data
    entities = report(detector, shared_data / "week-benign-sample.CICIDS2017_sample.csv", tmp_path)
    assert entities["available"] is False
    assert "no source_ip column" in entities["reason"]


def test_files_and_parts_merge_into_the_tables_of_one_pass():
    rng = np.random.default_rng(0)
    keys = rng.choice(np.array(["a", "b", "c", "d"], dtype=object), 1000)
    u, flagged = rng.random(1000), rng.random(1000) > 0.9
    top, ports = rng.integers(0, 3, 1000), rng.integers(0, 600, 1000)
    times = np.sort(rng.integers(0, 10**9, 1000))
    whole = EntityTable("host", ["f0", "f1", "f2"])
    whole.add(keys, u, flagged, top, ports, times)
    parts = [EntityTable("host", ["f0", "f1", "f2"]) for _ in range(3)]
    for part, lo, hi in zip(parts, (0, 300, 650), (300, 650, 1000)):
        part.add(keys[lo:hi], u[lo:hi], flagged[lo:hi], top[lo:hi], ports[lo:hi], times[lo:hi])
    merged = parts[0]
    merged.merge(parts[1])
    merged.merge(parts[2])
    a, b = whole.scores(None).set_index("entity"), merged.scores(None).set_index("entity").loc[list(whole.index)]
    assert np.array_equal(a["flows"].to_numpy(), b["flows"].to_numpy())
    assert np.allclose(a["score"].to_numpy(), b["score"].to_numpy())
    for key, code in whole.index.items():
        other = merged.index[key]
        assert whole.port_counts[code] == merged.port_counts[other] == len(set(ports[keys == key]))
        assert whole.first[code] == merged.first[other] == times[keys == key].min()


def test_small_entities_are_shrunk_towards_the_benign_middle_and_not_ranked():
    table = EntityTable("host", ["f0"])
    keys = np.array(["steady"] * 500 + ["tiny"] * 3, dtype=object)
    u = np.r_[np.full(500, 0.8), np.full(3, 0.99)]
    table.add(keys, u, u > 0.98, None, None, None)
    cal = EntityCalibration(EntityRule(), list(np.linspace(0.4, 0.6, 101)), 500, "test", [])
    out = table.ranked(cal, budget=1.0, max_rate=0.05)
    assert [r["entity"] for r in out["table"]] == ["steady"]  # 3 flows: not ranked, listed apart
    assert [r["entity"] for r in out["few_flows"]] == ["tiny"]
    assert out["table"][0]["flagged"] and 0.79 < out["table"][0]["score"] < 0.8


def test_benign_rank_is_uniform_on_benign_scores_and_calibration_without_hosts_uses_blocks():
    rng = np.random.default_rng(1)
    scores = rng.lognormal(size=5000)
    cal = calibrate_entities(scores)
    u = benign_rank(rng.lognormal(size=20000), cal.benign_quantiles)
    assert abs(np.mean(u) - 0.5) < 0.01 and abs(np.mean(u < 0.1) - 0.1) < 0.01
    assert cal.formed_by.startswith("blocks of 20") and cal.entities > 900
    hosts = np.repeat(np.arange(100), 50).astype(float)
    assert calibrate_entities(scores, hosts=hosts).formed_by == "source hosts"


def test_evaluation_reports_host_figures_per_night(night_data):
    from components.detect.evaluation import evaluate
    from components.detect.holdout import evaluate_data

    folder, detector = night_data
    scored = evaluate_data(detector, folder)
    figures = scored.entity_evaluation(detector)
    assert figures["available"] and figures["nights"] == 1  # all of 7/7/2017
    assert figures["attacking_hosts"] == 1 and figures["attacking_in_top3"] == 1
    assert figures["recall_at_budget"] == 1.0 and figures["auroc"] == 1.0
    assert figures["benign_flagged_per_night"] <= 1.0
    evaluation = evaluate(scored.scores, scored.labels, detector.threshold, entity=figures)
    assert evaluation.metrics()["entity_auroc"] == 1.0


def test_a_host_window_model_trains_calibrates_and_scores_each_host_on_its_own(night_data, tmp_path):
    from components.detect.fit import fit_detector
    from components.jobs import DetectorConfig, FlowRule, TrainConfig, TrainJob

    folder, _ = night_data
    job = TrainJob(data=folder, files=("friday-benign-after-299.MachineLearningCVE",),
                   train=TrainConfig(model="lstm_ae", epochs=1, window=4, stride=2, hidden=8, batch_size=256,
                                     lr=1e-3, device="cpu", seed=0),
                   detector=DetectorConfig(calibration="quantile", mahalanobis_inputs=False, target_fpr=0.01,
                                           rule=FlowRule(windows="host")))
    detector = fit_detector(job, progress=False).detector
    assert detector.host_windows
    stems = ["friday-afternoon-benign-head.TrafficLabelling", "friday-ddos-1000.TrafficLabelling"]
    log = night_file(folder, stems, tmp_path / "night.parquet")
    result = score_file(detector, log, tmp_path, "night", "1", batch_rows=100)
    assert result.status == "ok", result.error
    scored = pq.read_table(result.output)
    assert scored.num_rows == pq.read_metadata(log).num_rows
    assert np.isfinite(scored.column("anomaly_score").to_numpy()).all()
    # the attacker's flows score the same without the benign hosts' flows around them
    attacker = pc.equal(scored.column("source_ip"), ATTACKER)
    alone = pq.read_table(log).filter(pc.equal(pq.read_table(log).column("source_ip"), ATTACKER))
    pq.write_table(alone, tmp_path / "alone.parquet")
    again = score_file(detector, tmp_path / "alone.parquet", tmp_path, "alone", "1")
    np.testing.assert_allclose(scored.filter(attacker).column("anomaly_score").to_numpy(),
                               pq.read_table(again.output).column("anomaly_score").to_numpy(), rtol=1e-5)


def test_a_night_scored_in_parts_ranks_its_hosts_as_scored_whole(night_data, tmp_path):
    from components.data.logs import parquet_clock
    from components.serve.scoring import score_part

    folder, detector = night_data
    stems = ["friday-afternoon-benign-head.TrafficLabelling", "friday-portscan-1000.TrafficLabelling"]
    log = night_file(folder, stems, tmp_path / "night.parquet")
    pq.write_table(pq.read_table(log), log, row_group_size=300)
    whole = report(detector, log, tmp_path)
    n, clock = pq.read_metadata(log).num_rows, parquet_clock(log)
    parts = [score_part(detector, log, tmp_path / f"part{i}.parquet", a, b, n, "1", clock=clock)
             for i, (a, b) in enumerate([(0, 500), (500, 900), (900, n)])]
    stats = parts[0].stats
    for part in parts[1:]:
        stats.merge(part.stats)
    merged = stats.entity_report(budget=1.0, max_rate=0.05)
    for kind in ("hosts", "pairs"):
        assert merged[kind]["table"] == whole[kind]["table"]
        assert merged[kind]["few_flows"] == whole[kind]["few_flows"]
