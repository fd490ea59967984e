"""A tracking URI that carries credentials (``http://user:password@host``, as a worker may be given)
never shows them: not in what `flowae train` prints, not in MLflow's runs, tags or model records,
not in Prefect artifacts, not in the command's log. A real ``mlflow server`` on 127.0.0.1 (it
ignores the credentials; a user:password in the URL is what requests sends as basic auth); the
registered model is then loaded back through it without running stored code."""
from __future__ import annotations

import json

import mlflow
import numpy as np
import pyarrow.parquet as pq
import pytest
from flow_test_rows import TINY
from mlflow import MlflowClient
from typer.testing import CliRunner

from components.serve.packaging import load_detector, model_id, verified_pyfunc
from flows.cli import app

pytestmark = pytest.mark.slow  # an mlflow server and a train (about 40 s)

SECRET = "s3cret-Pw-19"


@pytest.fixture(scope="module")
def server(mlflow_server) -> int:
    return mlflow_server


def _prefect_artifacts_text() -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(sort=ArtifactSort.CREATED_DESC, limit=200)
    return json.dumps([[a.key, a.description, a.data] for a in found], default=str)


def test_credentials_in_the_tracking_uri_are_never_shown(server, real_ingested, tmp_path, monkeypatch):
    clean = f"http://127.0.0.1:{server}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://worker:{SECRET}@127.0.0.1:{server}")
    monkeypatch.delenv("FLOWAE_MLFLOW_UI_URL", raising=False)
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "false")  # MLflow's own links: flowae turns them off
    monkeypatch.setenv("FLOWAE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("FLOWAE_WORK_DIR", str(tmp_path / "work"))
    result = CliRunner().invoke(app, ["train", "--data", str(real_ingested), "--files",
                                      "friday-afternoon-benign-head.MachineLearningCVE", *TINY, "--challenger"])
    assert result.exit_code == 0, result.output
    printed = result.output + (result.stderr or "")
    assert f"open: {clean}/#/experiments/" in printed
    assert SECRET not in printed

    client = MlflowClient(clean, registry_uri=clean)
    stored = []
    for experiment in client.search_experiments():
        stored.append(experiment.tags)
        for run in client.search_runs([experiment.experiment_id]):
            stored += [run.data.tags, run.data.params, run.info.artifact_uri]
    for version in client.search_model_versions():
        stored += [version.tags, version.source]
    mlflow.set_tracking_uri(clean)
    logged = client.get_logged_model(model_id("models:/flowae@challenger"))
    stored += [logged.tags, logged.artifact_location]
    assert SECRET not in json.dumps(stored, default=str)
    assert SECRET not in _prefect_artifacts_text()
    logs = [p.read_text(errors="replace") for p in (tmp_path / "work").rglob("*") if p.is_file() and p.suffix in
            (".log", ".txt", ".json")]
    assert not any(SECRET in text for text in logs)

    mlflow.set_tracking_uri(f"http://worker:{SECRET}@127.0.0.1:{server}")  # loading through the server
    detector = load_detector("models:/flowae@challenger")
    version = client.get_model_version_by_alias("flowae", "challenger")
    assert f"{detector.threshold:.6g}" == version.tags["flowae.threshold"]  # the model trained above
    rows = pq.read_table(real_ingested / "curated" / "friday-ddos-1000.TrafficLabelling.parquet").slice(0, 50)
    rows = rows.to_pandas().drop(columns=["source_file", "row_number"])
    pyfunc = verified_pyfunc("models:/flowae@challenger")
    np.testing.assert_allclose(pyfunc.predict(rows)["anomaly_score"].to_numpy(),
                               detector.predict(rows)["anomaly_score"].to_numpy(), rtol=1e-5)
