"""Training on the real CIC-IDS2017 benign rows, recorded in a real (SQLite) MLflow store."""
from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from components.learn.experiment import run_training
from components.learn.models import BASELINE_NAMES, BASELINES, MODEL_NAMES, build_model
from components.learn.training import TrainConfig
from components.settings import load_settings
from flows.cli import app

TINY = {"epochs": 3, "window": 8, "stride": 4, "hidden": 8, "batch_size": 128, "lr": 3e-3,
        "device": "cpu", "seed": 0, "max_train_windows": 768}


@pytest.fixture(scope="module")
def ingested_real_benign(tmp_path_factory, shared_data):
    """The real benign MachineLearningCVE excerpt, through `flowae ingest` as a user would."""
    out = tmp_path_factory.mktemp("ingested")
    store = tmp_path_factory.mktemp("store")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}",
           "FLOWAE_ARTIFACT_ROOT": str(store / "artifacts")}
    result = CliRunner().invoke(
        app, ["ingest", str(shared_data / "friday-afternoon-benign-head.MachineLearningCVE.csv"),
              "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def settings(mlflow_env, tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWAE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    return load_settings()


def _artifacts(client: MlflowClient, run_id: str, path: str) -> set[str]:
    return {Path(a.path).name for a in client.list_artifacts(run_id, path)}


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_every_family_trains_on_real_benign_rows_and_is_logged(model, ingested_real_benign, settings):
    run = run_training(settings, ingested_real_benign, TrainConfig(model=model, **TINY), progress=False)
    history = run.result.history
    assert len(history) == 3
    assert history[-1].train_loss < history[0].train_loss, [h.train_loss for h in history]
    assert run.result.device == "cpu"

    client = MlflowClient(settings.tracking_uri)
    logged = client.get_run(run.run_id)
    assert logged.data.params["model"] == model
    assert logged.data.params["window"] == "8"
    assert "destination_port" not in logged.data.params["features"].split(",")
    assert int(logged.data.params["n_train_windows"]) == 768
    losses = client.get_metric_history(run.run_id, "train_loss")
    assert [m.step for m in losses] == [1, 2, 3]
    assert [m.value for m in losses] == pytest.approx([h.train_loss for h in history])
    assert len(client.get_metric_history(run.run_id, "windows_per_s")) == 3
    assert logged.data.tags["flowae.device"] == "cpu"
    assert {"model.json", "transform.json", "state_dict.pt"} <= _artifacts(client, run.run_id, "model")
    assert "loss_curve.png" in _artifacts(client, run.run_id, "plots")
    inputs = logged.inputs.dataset_inputs
    assert [d.dataset.name for d in inputs] == ["friday-afternoon-benign-head.MachineLearningCVE"]

    # The logged weights rebuild the exact scorer without unpickling anything.
    folder = Path(mlflow.artifacts.download_artifacts(run_id=run.run_id, artifact_path="model"))
    spec = json.loads((folder / "model.json").read_text())
    rebuilt = build_model(spec["name"], **spec["hparams"])
    rebuilt.load_state_dict(torch.load(folder / "state_dict.pt", weights_only=True), strict=True)
    rebuilt.eval()
    run.result.model.eval()
    batch = torch.from_numpy(run.data.windows.take(run.data.val_idx[:32]))
    with torch.no_grad():
        expected = run.result.model.score(batch)
        got = rebuilt.score(batch)
    assert torch.allclose(_window_scores(got), _window_scores(expected))
    if model == "lstm_ae_seq":
        assert "recon_error_vs_persistence" in logged.data.metrics


def _window_scores(out):
    return out.window_scores if hasattr(out, "window_scores") else out[0]


@pytest.mark.parametrize("model", BASELINE_NAMES)
def test_baselines_fit_on_the_same_windows(model, ingested_real_benign, settings):
    run = run_training(settings, ingested_real_benign, TrainConfig(model=model, **TINY), progress=False)
    client = MlflowClient(settings.tracking_uri)
    assert {"model.json", "transform.json", "baseline.json"} <= _artifacts(client, run.run_id, "model")
    assert np.isfinite(run.result.best_val_loss)

    # The logged state alone rebuilds the fitted baseline (no refit, no pickle).
    folder = Path(mlflow.artifacts.download_artifacts(run_id=run.run_id, artifact_path="model"))
    rebuilt = BASELINES[model].from_dict(json.loads((folder / "baseline.json").read_text()))
    windows = run.data.windows.take(run.data.val_idx[:64])
    np.testing.assert_allclose(rebuilt.score_windows(windows).window_scores,
                               run.result.model.score_windows(windows).window_scores, rtol=1e-6)


def test_resume_continues_the_same_run_after_a_crash(ingested_real_benign, settings, monkeypatch):
    from components.learn import training

    real_epoch = training._run_epoch

    def crash_in_epoch_3(model, optimizer, windows, train_idx, val_idx, cfg, device, epoch, progress):
        if epoch == 3:
            raise RuntimeError("simulated crash (power cut)")
        return real_epoch(model, optimizer, windows, train_idx, val_idx, cfg, device, epoch, progress)

    cfg = TrainConfig(model="lstm_ae", **{**TINY, "epochs": 4, "patience": 10})
    monkeypatch.setattr(training, "_run_epoch", crash_in_epoch_3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_training(settings, ingested_real_benign, cfg, progress=False)
    monkeypatch.setattr(training, "_run_epoch", real_epoch)

    resumed = run_training(settings, ingested_real_benign, cfg, resume=True, progress=False)
    assert resumed.result.resumed_from_epoch == 2
    assert [h.epoch for h in resumed.result.history] == [3, 4]
    client = MlflowClient(settings.tracking_uri)
    assert [m.step for m in client.get_metric_history(resumed.run_id, "train_loss")] == [1, 2, 3, 4]
    assert client.get_run(resumed.run_id).info.status == "FINISHED"
    runs = client.search_runs([client.get_experiment_by_name(settings.train_experiment).experiment_id])
    assert len(runs) == 1


def test_same_seed_same_weights(ingested_real_benign, settings):
    cfg = TrainConfig(model="lstm_ae", **{**TINY, "epochs": 1})
    a = run_training(settings, ingested_real_benign, cfg, progress=False).result.model.state_dict()
    b = run_training(settings, ingested_real_benign, cfg, progress=False).result.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_train_prints_the_run_id(ingested_real_benign, mlflow_env, tmp_path):
    result = CliRunner().invoke(
        app, ["train", "--data", str(ingested_real_benign), "--model", "lstm_ae", "--epochs", "2",
              "--window", "8", "--stride", "8", "--hidden", "8", "--batch-size", "256",
              "--device", "cpu"], env={"FLOWAE_CHECKPOINT_DIR": str(tmp_path / "ck")})
    assert result.exit_code == 0, result.output
    run_id = result.output.strip().splitlines()[-1].split()[-1]
    run = MlflowClient(mlflow_env).get_run(run_id)
    assert run.data.params["epochs"] == "2" and run.info.status == "FINISHED"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "transformer"], "unknown model 'transformer'"),
        (["--device", "tpu"], "device"),
    ],
)
def test_cli_train_rejects_bad_options_in_one_line(args, message, tmp_path, mlflow_env):
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_cli_train_on_a_folder_without_curated_data(tmp_path, mlflow_env):
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--device", "cpu"])
    assert result.exit_code == 1
    assert str(tmp_path) in result.output and "no curated parquet" in result.output
