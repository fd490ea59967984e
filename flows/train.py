"""Prefect flow around one training experiment (the work is in ``components.learn.experiment``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from components.learn.experiment import run_training
from components.learn.training import TrainConfig
from components.settings import load_settings


@task(name="train-model")
def train_task(data_dir: str, config: dict[str, Any], resume: bool) -> dict[str, Any]:
    run = run_training(load_settings(), Path(data_dir), TrainConfig(**config), resume=resume)
    result = run.result
    return {
        "run_id": run.run_id,
        "model": result.model.name,
        "device": result.device,
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "epochs_run": len(result.history),
        "train_windows": len(run.data.train_idx),
        "val_windows": len(run.data.val_idx),
        "windows_per_s": result.history[-1].windows_per_s if result.history else 0.0,
    }


@flow(name="train", log_prints=True)
def train_flow(data_dir: str, config: dict[str, Any] | None = None, resume: bool = False) -> dict[str, Any]:
    """Train one model on an ingest output folder; the MLflow run id is the result."""
    summary = train_task(data_dir, config or {}, resume)
    create_markdown_artifact(
        key="train-summary",
        markdown="\n".join(
            ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in summary.items()]
        ),
        description=f"training of {summary['model']}",
    )
    return summary
