"""`flowae demo` as a new user runs it: a real process, Prefect's temporary server, a SQLite MLflow store."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient


def test_demo_runs_the_pipeline_and_says_where_to_look(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FLOWAE_", "PREFECT_API"))}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect"), "MLFLOW_DISABLE_TELEMETRY": "true",
                "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    flowae = Path(sys.executable).with_name("flowae")
    done = subprocess.run([str(flowae), "demo", "--rows", "1500"], check=False, cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "mlflow ui --backend-store-uri sqlite:///mlflow/mlflow.db" in out
    assert "prefect server start" in out

    # The embedded default: the store lives under ./mlflow of the working directory.
    client = MlflowClient("sqlite:///" + str(tmp_path / "mlflow" / "mlflow.db"))
    data_runs = client.search_runs([client.get_experiment_by_name("flowae-data").experiment_id])
    train_runs = client.search_runs([client.get_experiment_by_name("flowae-train").experiment_id])
    assert len(data_runs) == 1 and len(train_runs) == 1
    run_id = train_runs[0].info.run_id
    assert run_id in out
    assert train_runs[0].data.params["model"] == "lstm_ae"

    manifest = json.loads((tmp_path / "data" / "demo" / "ingested" / "manifest.json").read_text())
    assert [f["status"] for f in manifest["files"]] == ["ok"] * 3
    for entry in manifest["files"]:
        assert entry["rows_in"] == entry["rows_curated"] + entry["rows_quarantined"] == 1500
