"""`flowae evaluate` on the model's own training folder: the flows it was fitted or calibrated on
are left out (and the run, the artifact and stdout say how many); `--include-training-data`
counts them and the run is tagged so. Real CIC-IDS2017 rows, a tiny registered model."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from flow_test_rows import BENIGN, latest_artifact, register_detector, tiny_detector
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from flows.cli import app

TRAINING_FILE = BENIGN.replace(".csv", ".parquet")


@pytest.fixture(scope="module")
def detector(real_ingested):
    return tiny_detector(real_ingested, calibration="quantile")



def _evaluate(real_ingested, store, *extra):
    result = CliRunner().invoke(app, ["evaluate", "--model-uri", "models:/flowae@challenger",
                                      "--data", str(real_ingested), *extra])
    assert result.exit_code == 0, result.output
    client = MlflowClient(store.tracking_uri, registry_uri=store.tracking_uri)
    experiment = client.get_experiment_by_name(store.evaluate_experiment).experiment_id
    run = client.search_runs([experiment], order_by=["attributes.start_time DESC"])[0]
    return result.stdout.splitlines(), run, latest_artifact("evaluation").data


def test_evaluate_on_the_training_folder_counts_no_training_flow(detector, real_ingested, store):
    register_detector(store, detector)
    counts = detector.info.split_counts
    fitted = sum(counts[role]["benign"] for role in ("train", "validation", "calibration"))
    benign_rows = pq.read_metadata(real_ingested / "curated" / TRAINING_FILE).num_rows
    assert fitted + counts["test"]["benign"] == benign_rows and counts["test"]["benign"] < fitted
    assert set(detector.info.file_digests) == set(detector.info.files)

    lines, run, artifact = _evaluate(real_ingested, store)
    line = (f"left out {fitted} flows fitted or calibrated on (benign train/validation/calibration "
            f"flows: {TRAINING_FILE} {fitted})")
    assert lines[0] == line
    metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
    assert metrics["flows"] == counts["test"]["benign"] + 2000 and metrics["attacks"] == 2000
    assert metrics["left_out_flows"] == fitted and metrics["training_flows_counted"] == 0
    assert tags["flowae.includes_training_data"] == "false" and params["left_out"] == line
    assert params["include_training_data"] == "false"
    assert line in artifact and "includes training data" not in artifact
    assert "| DDoS | 1000 |" in "\n".join(lines) and "| PortScan | 1000 |" in "\n".join(lines)

    lines, run, artifact = _evaluate(real_ingested, store, "--include-training-data")
    line = (f"includes training data: {fitted} flows the model was fitted or calibrated on are counted "
            f"({TRAINING_FILE} {fitted}; --include-training-data)")
    assert lines[0] == line
    metrics, tags = run.data.metrics, run.data.tags
    assert metrics["flows"] == sum(c["flows"] for c in counts.values()) == fitted + counts["test"]["flows"]
    assert metrics["left_out_flows"] == 0 and metrics["training_flows_counted"] == fitted
    assert tags["flowae.includes_training_data"] == "true" and run.data.params["left_out"] == line
    assert line in artifact
