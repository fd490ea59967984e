"""One training experiment, end to end, recorded in MLflow.

Curated parquet -> time-ordered frame -> transform fitted on benign training flows -> windows ->
time split -> ``train_model`` -> artifacts. What a later stage needs to rebuild the scorer (model
name and hparams, ``state_dict``, fitted transform) is logged under ``model/`` with no pickles.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import torch

from components.data.contract import load_contract
from components.data.curated import curated_files, file_columns, read_curated
from components.data.readers import sha256_file
from components.learn.features import FeatureTransform, select_features
from components.learn.training import EpochStats, TrainConfig, TrainResult, train_model
from components.learn.windows import Windows, benign_window_mask, build_windows, order_flows
from components.settings import Settings
from components.tracking import ensure_experiment, file_dataset


@dataclass
class TrainingData:
    """Windows ready for the trainer, plus what produced them (for logging and scoring)."""

    transform: FeatureTransform
    windows: Windows
    train_idx: np.ndarray
    val_idx: np.ndarray
    n_flows: int
    n_train_flows: int


def prepare_training_data(frame: pd.DataFrame, cfg: TrainConfig) -> TrainingData:
    """Split flows by time, fit the transform on benign training flows only, build benign windows.

    Training windows lie wholly before the split flow, validation windows wholly after it, so
    the two share no flow and validation is strictly later in time.
    """
    contract = load_contract()
    if "label" not in frame.columns:
        raise ValueError("curated data has no label column: training needs rows labelled BENIGN")
    frame = order_flows(frame)
    is_benign = (frame["label"] == contract.benign_label).to_numpy()
    n_flows = len(frame)
    split = int(n_flows * (1.0 - cfg.val_fraction))
    train_rows = frame.iloc[:split][is_benign[:split]]
    if len(train_rows) < cfg.window:
        raise ValueError(f"only {len(train_rows)} benign training flows; need at least {cfg.window}")
    transform = FeatureTransform.fit(train_rows, select_features(frame.columns))
    values = transform.transform(frame)
    groups = frame[cfg.group_by].to_numpy() if cfg.group_by else None
    windows = build_windows(values, cfg.window, cfg.stride, groups=groups)
    benign = benign_window_mask(is_benign, windows)
    train_idx = np.flatnonzero(benign & (windows.ends < split))
    val_idx = np.flatnonzero(benign & (windows.starts >= split))
    if cfg.max_train_windows is not None and len(train_idx) > cfg.max_train_windows:
        keep = np.linspace(0, len(train_idx) - 1, cfg.max_train_windows).round().astype(np.int64)
        train_idx = train_idx[keep]
    return TrainingData(transform, windows, train_idx, val_idx, n_flows, split)


@dataclass
class TrainingRun:
    run_id: str
    result: TrainResult
    data: TrainingData


def checkpoint_path(settings: Settings, cfg: TrainConfig, digests: list[str]) -> Path:
    """Same config on the same data -> same checkpoint, so ``--resume`` finds it."""
    key = hashlib.sha256((cfg.model_dump_json() + "".join(digests)).encode()).hexdigest()[:16]
    return settings.checkpoint_dir / f"{cfg.model}-{key}" / "last.pt"


def run_training(settings: Settings, data_dir: Path, cfg: TrainConfig, resume: bool = False,
                 progress: bool = True) -> TrainingRun:
    """Train ``cfg.model`` on an ingest output folder and log everything to MLflow."""
    cfg.check_model()
    files = curated_files(data_dir)
    digests = [sha256_file(f) for f in files]
    experiment_id = ensure_experiment(settings, settings.train_experiment)
    ckpt = checkpoint_path(settings, cfg, digests)
    run_id_file = ckpt.parent / "mlflow_run_id"
    previous = run_id_file.read_text().strip() if resume and run_id_file.is_file() else None

    columns = file_columns(files)
    wanted = select_features(columns) + ["timestamp", "label", "source_file", "row_number"]
    if cfg.group_by:
        wanted.append(cfg.group_by)
    frame = read_curated(files, columns=wanted)

    with mlflow.start_run(experiment_id=experiment_id, run_id=previous,
                          run_name=None if previous else cfg.model, log_system_metrics=True) as run:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        run_id_file.write_text(run.info.run_id)
        mlflow.set_tags({"flowae.stage": "train", "flowae.model": cfg.model})
        if previous is None:
            mlflow.log_params(_flat_params(cfg))
            for path, digest in zip(files, digests):
                mlflow.log_input(file_dataset(path, digest), context="training")
        data = prepare_training_data(frame, cfg)
        _log_data_params(data, previous is not None)

        def on_epoch(stats: EpochStats) -> None:
            mlflow.log_metrics({"train_loss": stats.train_loss, "val_loss": stats.val_loss,
                                "windows_per_s": stats.windows_per_s,
                                "epoch_seconds": stats.seconds}, step=stats.epoch)

        result = train_model(data.windows, data.train_idx, data.val_idx, cfg, checkpoint=ckpt,
                             resume=resume, on_epoch=on_epoch, progress=progress)
        mlflow.set_tag("flowae.device", result.device)
        mlflow.log_metrics({"best_val_loss": result.best_val_loss, "best_epoch": result.best_epoch})
        _log_extra_metrics(result, data)
        log_model_artifacts(result, data, cfg)
        return TrainingRun(run.info.run_id, result, data)


def _flat_params(cfg: TrainConfig) -> dict[str, str]:
    params = cfg.model_dump()
    extra = params.pop("model_kwargs")
    params.update({f"model_kwargs.{k}": v for k, v in extra.items()})
    return {k: str(v) for k, v in params.items()}


def _log_data_params(data: TrainingData, resumed: bool) -> None:
    if resumed:
        return
    mlflow.log_params({
        "n_features": len(data.transform.feature_names),
        "features": ",".join(data.transform.feature_names)[:6000],
        "dropped_constant": ",".join(data.transform.dropped_constant)[:6000] or "-",
        "n_flows": data.n_flows,
        "n_train_flows": data.n_train_flows,
        "n_train_windows": len(data.train_idx),
        "n_val_windows": len(data.val_idx),
    })


def _log_extra_metrics(result: TrainResult, data: TrainingData) -> None:
    """``lstm_ae_seq`` tends to learn the identity: put its error beside persistence's."""
    from components.learn.models import persistence_error_ratio

    if result.model.name == "lstm_ae_seq":
        val = data.windows.take(data.val_idx[:8192])
        mlflow.log_metric("recon_error_vs_persistence", persistence_error_ratio(result.model, val))


def log_model_artifacts(result: TrainResult, data: TrainingData, cfg: TrainConfig) -> None:
    """``model/``: model.json (name, hparams, windowing), transform.json, weights, loss curve."""
    model = result.model
    spec = {"name": model.name, "hparams": model.hparams, "window": cfg.window, "stride": cfg.stride,
            "group_by": cfg.group_by, "feature_names": data.transform.feature_names}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        folder.mkdir()
        (folder / "model.json").write_text(json.dumps(spec, indent=2, default=str))
        data.transform.save(folder / "transform.json")
        if getattr(model, "trainable", True):
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            torch.save(state, folder / "state_dict.pt")
        else:
            (folder / "baseline.json").write_text(json.dumps(model.to_dict()))
        mlflow.log_artifacts(str(folder), artifact_path="model")
    if result.history:
        mlflow.log_figure(_loss_figure(result), "plots/loss_curve.png")


def _loss_figure(result: TrainResult):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = [s.epoch for s in result.history]
    ax.plot(epochs, [s.train_loss for s in result.history], marker="o", label="train")
    ax.plot(epochs, [s.val_loss for s in result.history], marker="o", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(f"{result.model.name} on {result.device}")
    ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig
