"""`flowae demo` as a new user runs it: a real process, Prefect's temporary server, a SQLite MLflow store."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow  # the whole demo: synthetic days, retrain, score (about 45 s)


def test_demo_runs_the_pipeline_and_says_where_to_look(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FLOWAE_", "PREFECT_API"))}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect"), "MLFLOW_DISABLE_TELEMETRY": "true",
                "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    flowae = Path(sys.executable).with_name("flowae")
    done = subprocess.run([str(flowae), "demo", "--rows", "1500"], check=False, cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "Traceback" not in done.stderr
    db = tmp_path / "mlflow" / "mlflow.db"
    assert f"{Path(sys.executable).parent}/mlflow ui --backend-store-uri sqlite:///{db}" in out  # any directory
    assert "prefect server start" in out and "workflowType=machine_learning" in out
    assert "Champion:         version 1 (first model: no champion yet)" in out

    # The embedded default: the store lives under ./mlflow of the working directory.
    store = "sqlite:///" + str(tmp_path / "mlflow" / "mlflow.db")
    client = MlflowClient(store, registry_uri=store)
    retrain = client.get_experiment_by_name("flowae-retrain")
    runs = client.search_runs([retrain.experiment_id])
    stages = sorted(r.data.tags.get("flowae.stage", "parent") for r in runs)
    assert stages == ["calibrate", "evaluate", "parent", "register", "train", "validate", "windows"]
    assert str(client.get_model_version_by_alias("flowae", "champion").version) == "1"

    demo = tmp_path / "data" / "demo"
    manifest = json.loads((demo / "ingested" / "manifest.json").read_text())
    assert [f["status"] for f in manifest["files"]] == ["ok"] * 3
    assert manifest["files"][0]["source"].endswith("Monday-WorkingHours.pcap_ISCX.csv")  # capture order
    for entry in manifest["files"]:
        assert entry["rows_in"] == entry["rows_curated"] + entry["rows_quarantined"] == 1500
    summary = json.loads((demo / "scored" / "summary.json").read_text())
    assert summary["flows"] == 3000 and [f["status"] for f in summary["files"]] == ["ok", "ok"]
    assert set(summary["by_label"]) == {"BENIGN", "DDoS", "PortScan"}
    assert f"Scored Friday:    3,000 flows, {summary['anomalies']:,} flagged" in out

    # The night leads with its hosts, and every attack of the generator is found or named as missed.
    assert next(iter(summary)) == "entities"
    hosts = summary["entities"]["hosts"]
    assert "hosts to look at:" in out and hosts["ranked"] >= 2
    for label in ("DDoS", "PortScan"):
        line = next(x for x in out.splitlines() if x.strip().startswith(label) and "flow level:" in x)
        counts = summary["by_label"][label]
        found = counts["anomalies"] > 0 or any(
            r["flagged"] and r["entity"] in summary["attack_sources"][label] for r in hosts["table"])
        assert ("found" if found else "MISSED") in line, line
