"""`flowae train` on real CIC-IDS2017 rows: one MLflow run with training, calibration, the test
evaluation, plots and one packaged model, registered as the challenger; resume after a crash;
one-line errors for bad options and unusable data."""
from __future__ import annotations

import numpy as np
import pytest
from flow_test_rows import BENIGN, TINY
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from components.serve.packaging import load_detector
from flows.cli import app

TRAIN_ON = ["--files", BENIGN.removesuffix(".csv")]


def run_cli(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def _artifacts(client: MlflowClient, run_id: str, path: str) -> set[str]:
    return {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(run_id, path)}


@pytest.mark.slow  # flowae train, per model (20-25 s with its setup)
@pytest.mark.parametrize("model", ["lstm_ae", "isolation_forest"])
def test_train_logs_one_run_and_registers_the_challenger(model, real_ingested, store):
    result = run_cli("train", "--data", str(real_ingested), "--model", model, *TRAIN_ON, *TINY, "--challenger")
    assert result.exit_code == 0, result.output
    run_id = result.stdout.strip().splitlines()[-2].split()[-1]
    client = MlflowClient(store.tracking_uri, registry_uri=store.tracking_uri)
    run = client.get_run(run_id)
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["train.model"] == model and params["train.window"] == "8"
    assert params["detector.calibration"] == "mahalanobis" and params["files"] == "['friday-afternoon-benign-head.MachineLearningCVE']"
    # one name per setting: the stride the detector uses is the job's own parameter, resolved
    assert params["detector.rule.stride"] == "8" and not {"calibration.method", "rule.stride"} & set(params)
    assert params["training_files"] == BENIGN.replace(".csv", ".parquet")
    assert "friday-ddos-1000.TrafficLabelling.parquet" in params["test_files"]
    assert f"**{model}**: AUROC {metrics['test_auroc']:.4f}" in tags["mlflow.note.content"]  # its description
    assert "destination_port" not in params["features"].split(",")
    assert tags["flowae.file_order_method"] and tags["flowae.device"] == "cpu"
    # attack flows ranked above benign ones (a tiny lstm_ae about 0.96, isolation_forest 0.93)
    assert 0.0 <= metrics["test_fpr"] <= 0.05 and metrics["test_auroc"] > 0.85
    assert {"test_recall.DDoS", "test_recall.PortScan", "threshold", "calibration_flows"} <= set(metrics)
    if model == "lstm_ae":  # the loss curve: step metrics MLflow charts (no figure of its own)
        assert [m.step for m in client.get_metric_history(run_id, "train_loss")] == [1, 2]
        assert [m.step for m in client.get_metric_history(run_id, "val_loss")] == [1, 2]
    plots = _artifacts(client, run_id, "plots")
    assert {"roc.png", "pr.png", "score_histogram.png", "recall_per_label.png",
            "calibration_scores.png"} <= plots and "loss_curve.png" not in plots
    assert ("reconstructions.png" in plots) == (model == "lstm_ae")
    contexts = {d.dataset.name: d.tags[0].value for d in run.inputs.dataset_inputs}
    assert contexts[BENIGN.removesuffix(".csv")] == "training"
    assert contexts["friday-ddos-1000.TrafficLabelling"] == "test"

    version = client.get_model_version_by_alias(store.registered_model_name, "challenger")
    assert str(version.version) == "1" and version.tags["flowae.family"] == model
    assert version.run_id == run_id  # the registered version's source run is the run that trained
    assert client.get_logged_model(version.source.removeprefix("models:/")).name == model  # the family
    assert {"flowae.data_digest", "flowae.version", "flowae.prefect_flow_run_id", "metric.auroc"} <= set(version.tags)
    detector = load_detector("models:/flowae@challenger")
    assert detector.name == model and detector.threshold == pytest.approx(metrics["threshold"])
    assert detector.info.training_files == [BENIGN.replace(".csv", ".parquet")]


def test_resume_continues_the_same_run_after_a_crash(real_ingested, store, monkeypatch):
    from components.learn import training

    real_epoch = training._run_epoch

    def crash_in_epoch_3(model, optimizer, windows, train_idx, val_idx, cfg, device, epoch, progress):
        if epoch == 3:
            raise RuntimeError("simulated crash (power cut)")
        return real_epoch(model, optimizer, windows, train_idx, val_idx, cfg, device, epoch, progress)

    args = ["train", "--data", str(real_ingested), *TRAIN_ON, *TINY, "--epochs", "4", "--patience", "10",
            "--no-register"]
    monkeypatch.setattr(training, "_run_epoch", crash_in_epoch_3)
    crashed = run_cli(*args)
    assert crashed.exit_code == 1 and "simulated crash (power cut)" in crashed.stderr
    assert "Traceback" not in crashed.output
    monkeypatch.setattr(training, "_run_epoch", real_epoch)

    resumed = run_cli(*args, "--resume")
    assert resumed.exit_code == 0, resumed.output
    client = MlflowClient(store.tracking_uri, registry_uri=store.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name(store.train_experiment).experiment_id])
    assert len(runs) == 1  # the same run, continued
    run_id = runs[0].info.run_id
    assert [m.step for m in client.get_metric_history(run_id, "train_loss")] == [1, 2, 3, 4]
    assert client.get_run(run_id).info.status == "FINISHED"
    assert np.isfinite(client.get_run(run_id).data.metrics["threshold"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "transformer"], "unknown model 'transformer'"),
        (["--device", "tpu"], "--device: Input should be 'auto', 'cpu' or 'cuda'"),
        (["--calibration", "best"], "--calibration: Input should be 'quantile', 'mahalanobis' or 'pot'"),
        (["--target-fpr", "0.7"], "--target-fpr: Input should be less than 0.5"),
        (["--model", "lstm_ae", "--window", "1"], "lstm_ae needs windows of at least 2 flows"),
        (["--windows", "subnet"], "--windows: String should match pattern"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args, message, tmp_path, mlflow_env):
    result = run_cli("train", "--data", str(tmp_path), *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flowae: train:") and message in lines[0]


def test_unusable_data_is_one_line_naming_the_folder_or_file(tmp_path, real_ingested, store):
    empty = run_cli("train", "--data", str(tmp_path), "--device", "cpu")
    assert empty.exit_code == 1 and "no curated parquet" in empty.stderr and str(tmp_path) in empty.stderr
    no_benign = run_cli("train", "--data", str(real_ingested), "--files", "friday-ddos-1000.TrafficLabelling", *TINY)
    assert no_benign.exit_code == 1
    assert "no benign flows in the training files" in no_benign.stderr.strip().splitlines()[-1]
    too_short = run_cli("train", "--data", str(real_ingested), *TRAIN_ON, *TINY, "--window", "5000")
    assert too_short.exit_code == 1 and "not enough benign flows for windows of 5000" in too_short.stderr
    unknown = run_cli("train", "--data", str(real_ingested), "--files", "tuesday", *TINY)
    assert unknown.exit_code == 1 and "--files tuesday: no such curated file" in unknown.stderr
    for result in (empty, no_benign, too_short, unknown):
        assert "Traceback" not in result.output
        assert f"details: {store.work_dir / 'flowae-train.error.log'}" in result.stderr
