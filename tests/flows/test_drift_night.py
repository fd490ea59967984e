"""Drift in a real scored night: the champion's reference is its benign calibration flows, and a
night is measured on the flows the champion did not flag (and not labelled as an attack), so an
attack night whose other traffic did not move does not say "consider retraining" (measured on
every flow, the same night would); the flagged share stands beside it in summary.json and the
Prefect artifact."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
from flow_test_rows import BENIGN, DDOS, WEEK, champion

from components.detect.drift import DriftAccumulator
from components.jobs import ScoreJob
from components.serve.nightly import split_parts
from components.serve.packaging import load_detector
from flows.score import run_score_flow


def test_an_attack_night_on_unmoved_traffic_does_not_advise_retraining(store, real_ingested, shared_data, tmp_path):
    champion(store, real_ingested)
    detector = load_detector("models:/flowae@champion")
    assert detector.reference["period"] == "benign calibration flows"
    assert max(detector.reference["score"]["sample"]) <= detector.threshold  # what a night is measured on

    out = tmp_path / "night"
    run_score_flow(ScoreJob(inputs=(str(shared_data / DDOS), str(shared_data / WEEK)), out=out, device="cpu"))
    summary = json.loads((out / "summary.json").read_text())
    drift = summary["drift"]
    tables = [pq.read_table(out / f"{name.removesuffix('.csv')}.scored.parquet") for name in (DDOS, WEEK)]
    flagged = np.concatenate([t.column("is_anomaly").to_numpy(zero_copy_only=False) for t in tables])
    labels = np.concatenate([np.asarray(t.column("label").to_pylist(), object) for t in tables])
    missed_attacks = int(((labels != "BENIGN") & ~flagged).sum())

    assert drift["warning"] is None and drift["shifted_features"] == []
    assert drift["flows"] == 2686 and drift["flagged"] == summary["anomalies"] == int(flagged.sum())
    assert drift["flagged_share"] == summary["anomalies"] / 2686
    assert drift["unflagged_attacks"] == missed_attacks
    assert drift["measured"] == int(((labels == "BENIGN") & ~flagged).sum())
    assert drift["measured_on"] == "flows the champion did not flag, not labelled as an attack"

    everything = DriftAccumulator(detector.reference, detector.feature_names)  # the old rule: every flow
    for table in tables:
        everything.add(detector.transform.scale_rows(table), table.column("anomaly_score").to_numpy())
    assert "consider retraining" in everything.report().warning

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        night = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["nightly-scoring"])),
                                      sort=ArtifactSort.CREATED_DESC, limit=1)[0]
    assert (f"drift measured on {drift['measured']:,} flows the champion did not flag, not labelled as an attack; "
            f"flagged: {drift['flagged']:,} ({drift['flagged_share']:.1%})") in night.data
    assert "consider retraining" not in night.data


def test_a_file_scored_in_parts_reports_the_drift_of_the_single_pass(store, real_ingested, shared_data, tmp_path):
    """Each file's drift sample is keyed by its name and row numbers: the parts of a big parquet file
    add up to exactly the single pass's report (sample and KS statistic included)."""
    import pandas as pd
    import pyarrow as pa

    champion(store, real_ingested)
    big = tmp_path / "friday.parquet"
    rows = pd.read_csv(shared_data / BENIGN, nrows=3_000)  # more flows than the sample keeps
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), big, row_group_size=500)
    assert len(split_parts(big, 500)) == 6
    whole = run_score_flow(ScoreJob(inputs=(str(big),), out=tmp_path / "whole", device="cpu"))
    parts = run_score_flow(ScoreJob(inputs=(str(big),), out=tmp_path / "parts", device="cpu", part_rows=500))
    assert not (tmp_path / "parts" / ".parts" / "friday").exists() and whole["flows"] == parts["flows"] == 3_000
    a, b = (json.loads((tmp_path / d / "summary.json").read_text())["drift"] for d in ("whole", "parts"))
    assert a == b and a["flows"] == 3_000 and a["measured"] > 2_000
