"""`flowae retrain` end to end on the real rows (train on the benign file's earlier part, calibrate
on a later part, test on DDoS, PortScan and the last benign part), the champion loaded by alias in
a fresh process, a second retrain, and `flowae evaluate` on the same data."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from flow_test_rows import BENIGN, DDOS, PORTSCAN, TINY
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from flows.cli import app

pytestmark = pytest.mark.slow  # two retrains and a train (about 100 s)


def retrain(shared_data, out, *extra: str):
    inputs = ["--data", *(str(shared_data / f) for f in (BENIGN, DDOS, PORTSCAN))]  # as a shell glob gives them
    return CliRunner().invoke(app, ["retrain", *inputs, "--out", str(out),
                                    "--files", BENIGN.removesuffix(".csv"), *TINY, *extra])


def test_retrain_registers_promotes_and_the_champion_scores_raw_rows_in_a_new_process(
        shared_data, store, tmp_path):
    first = retrain(shared_data, tmp_path / "ingested")
    assert first.exit_code == 0, first.output
    assert "promoted (first model: no champion yet); champion is version 1" in first.stdout
    assert "workflowType=machine_learning" in first.stdout

    client = MlflowClient(store.tracking_uri, registry_uri=store.tracking_uri)
    experiment = client.get_experiment_by_name(store.retrain_experiment)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.data.tags["flowae.stage"] for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert len(parents) == 1
    assert children == {"validate", "windows", "train", "calibrate", "evaluate", "register"}
    assert parents[0].data.tags["flowae.champion"] == "1"
    assert "Registered model 'flowae' already exists" not in first.output  # a fresh store
    # hyperparameters on the parent and on the run that trained; the evaluation summary on the parent
    train_run = next(r for r in runs if r.data.tags.get("flowae.stage") == "train")
    for run in (parents[0], train_run):
        assert run.data.params["train.hidden"] == "8" and run.data.params["train.model"] == "lstm_ae"
    description = parents[0].data.tags["mlflow.note.content"]
    assert description.startswith("**lstm_ae**: test AUROC") and "promoted to champion" in description
    assert "| DDoS |" in description  # the evaluation summary table
    version = client.get_model_version(store.registered_model_name, "1")
    assert version.run_id == train_run.info.run_id  # "Source run": the run that trained
    assert client.get_logged_model(version.source.removeprefix("models:/")).name == "lstm_ae"
    ingest_run = client.get_run(parents[0].data.tags.get("flowae.ingest_run_id") or next(
        r.data.tags["flowae.ingest_run_id"] for r in runs if "flowae.ingest_run_id" in r.data.tags))
    assert ingest_run.info.run_name.startswith("ingest friday-afternoon-benign-head")
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as prefect:
        names = {r.name for r in prefect.read_flow_runs()}
    assert any(n.startswith("retrain lstm_ae friday-afternoon-benign-head") for n in names), names
    manifest = json.loads((tmp_path / "ingested" / "manifest.json").read_text())
    assert [f["status"] for f in manifest["files"]] == ["ok"] * 3

    # A fresh process that never saw the training run: only the registry and the raw file.
    code = textwrap.dedent(f"""
        import mlflow, pandas as pd
        raw = pd.read_csv({str(shared_data / DDOS)!r})
        model = mlflow.pyfunc.load_model("models:/flowae@champion")
        out = model.predict(raw)
        print(len(raw), len(out), int(out["anomaly_score"].isna().sum()), sorted(out.columns))
    """)
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.tracking_uri}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    n_in, n_out, nans, columns = done.stdout.strip().splitlines()[-1].split(" ", 3)
    assert n_in == n_out == "1000" and nans == "0"
    assert "anomaly_score" in columns and "top_feature_1" in columns

    second = retrain(shared_data, tmp_path / "ingested", "--model", "pca")
    assert second.exit_code == 0, second.output
    model = client.get_registered_model(store.registered_model_name)
    aliases = {k: str(v) for k, v in model.aliases.items()}
    assert len(client.search_model_versions(f"name='{store.registered_model_name}'")) == 2
    # both models fitted on the same benign flows, so the promotion compares them on the flows each
    # retrain tested on: each figure is that retrain's test AUROC, and the decision follows them
    tested = {r.data.tags["flowae.model"]: r.data.metrics["test_auroc"]
              for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" not in r.data.tags}
    registry = client.get_experiment_by_name(store.registry_experiment)
    decided = client.search_runs([registry.experiment_id], order_by=["attributes.start_time DESC"],
                                 max_results=1)[0].data.metrics
    assert decided["champion_value"] == pytest.approx(tested["lstm_ae"], abs=1e-6)
    assert decided["challenger_value"] == pytest.approx(tested["pca"], abs=1e-6)
    promoted = decided["challenger_value"] > decided["champion_value"] + store.promotion_margin
    assert decided["promoted"] == float(promoted)
    if promoted:  # the aliases and the printed decision agree with the figures
        assert "promotion: promoted" in second.stdout
        assert aliases == {"champion": "2"} and json.loads(model.tags["flowae.champion_history"]) == ["1"]
    else:
        assert "promotion: not promoted" in second.stdout
        assert aliases == {"champion": "1", "challenger": "2"}


def test_evaluate_a_registered_model_on_labelled_data(real_ingested, store, tmp_path):
    trained = CliRunner().invoke(app, ["train", "--data", str(real_ingested), "--files",
                                       BENIGN.removesuffix(".csv"), *TINY, "--challenger"])
    assert trained.exit_code == 0, trained.output
    result = CliRunner().invoke(app, ["evaluate", "--model-uri", "models:/flowae@challenger",
                                      "--data", str(real_ingested)])
    assert result.exit_code == 0, result.output
    assert "| DDoS | 1000 |" in result.stdout and "| PortScan | 1000 |" in result.stdout
    client = MlflowClient(store.tracking_uri, registry_uri=store.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name(store.evaluate_experiment).experiment_id])
    metrics = runs[0].data.metrics
    from components.serve.packaging import load_detector

    record = load_detector("models:/flowae@challenger").info
    test_benign = record.split_counts["test"]["benign"]  # the model's own training flows are left out
    assert 0 < test_benign < 9998 // 4
    assert metrics["flows"] == test_benign + 2000 and metrics["attacks"] == 2000
    assert {"auroc", "auprc", "f1", "fpr", "recall.DDoS", "recall.PortScan", "window_auroc"} <= set(metrics)
    # the same flows the training run tested on (its own fitted flows left out): the same figures
    trained_run = client.search_runs([client.get_experiment_by_name(store.train_experiment).experiment_id])[0]
    for name in ("auroc", "fpr"):
        assert metrics[name] == pytest.approx(trained_run.data.metrics[f"test_{name}"], abs=1e-4), name
