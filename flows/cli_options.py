"""The training options ``train``, ``retrain`` and ``compare`` share, and the job they build.

Why one place: the three commands must read the same flags the same way, and the job a command
builds is validated once (pydantic) before any server starts or any file is read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from components.settings import Settings
from flows.cli_support import fail, one_line

Files = Annotated[list[str] | None, typer.Option(
    "--files", help="Train on these curated files (name or stem; repeat). Others are test data.")]
Days = Annotated[list[str] | None, typer.Option(
    "--days", help="Train on the files of these capture days (monday..friday; repeat).")]
Model = Annotated[str | None, typer.Option("--model", help="Model family or baseline name.")]
Epochs = Annotated[int | None, typer.Option(min=1, help="Most epochs (early stopping may stop sooner).")]
Window = Annotated[int | None, typer.Option(min=1, help="Flows per window (T); 1 only for pca and isolation_forest.")]
Stride = Annotated[int | None, typer.Option(min=1, help="Training window stride.")]
Hidden = Annotated[int | None, typer.Option(min=1)]
BatchSize = Annotated[int | None, typer.Option("--batch-size", min=1)]
Lr = Annotated[float | None, typer.Option(min=0.0)]
Patience = Annotated[int | None, typer.Option(min=1, help="Epochs without a better validation loss.")]
Device = Annotated[str | None, typer.Option(help="auto | cpu | cuda")]
Seed = Annotated[int | None, typer.Option(min=0)]
Scaler = Annotated[str | None, typer.Option(help="standard | robust (median/IQR fitted on benign).")]
Calibration = Annotated[str | None, typer.Option(help="quantile | mahalanobis | pot")]
TargetFpr = Annotated[float | None, typer.Option("--target-fpr", help="False-positive rate on benign.")]
ScoreStride = Annotated[int | None, typer.Option("--score-stride", min=1,
                                                 help="Stride of the windows that score flows (default: T).")]
Aggregate = Annotated[str | None, typer.Option(help="Per-flow score over covering windows: mean | max.")]
Windows = Annotated[str | None, typer.Option(
    "--windows", help="global (a file's consecutive flows) | host (one source host's flows in time order).")]
MahalanobisInputs = Annotated[bool | None, typer.Option(
    "--mahalanobis-inputs/--no-mahalanobis-inputs",
    help="mahalanobis: also weigh each flow's own features (default on).")]


def build_job(settings: Settings, data: Path, *, files=None, days=None, model=None, epochs=None,
              window=None, stride=None, hidden=None, batch_size=None, lr=None, patience=None,
              device=None, seed=None, scaler=None, calibration=None, target_fpr=None,
              score_stride=None, aggregate=None, windows=None, mahalanobis_inputs=None, resume: bool = False,
              register_model: bool = True,
              defaults: dict[str, Any] | None = None, command: str = "train"):
    """A validated ``TrainJob``; a bad option ends the command with one line and exit code 2."""
    from components.detect import defaults as recommended
    from components.jobs import DetectorConfig, TrainJob
    from components.learn.training import TrainConfig

    train = dict(recommended.TRAIN if defaults is None else defaults)
    train.update({k: v for k, v in {
        "model": model, "epochs": epochs, "window": window, "stride": stride, "hidden": hidden,
        "batch_size": batch_size, "lr": lr, "patience": patience, "scaler": scaler}.items() if v is not None})
    train["device"] = device or settings.device
    train["seed"] = settings.seed if seed is None else seed
    detector: dict[str, Any] = dict(recommended.DETECTOR)
    if mahalanobis_inputs is not None:
        detector["mahalanobis_inputs"] = mahalanobis_inputs
    if calibration is not None:
        detector["calibration"] = calibration
    if target_fpr is not None:
        detector["target_fpr"] = target_fpr
    rule = {k: v for k, v in {"stride": score_stride, "aggregate": aggregate, "windows": windows}.items()
            if v is not None}
    if rule:
        detector["rule"] = rule
    try:
        job = TrainJob(data=data, files=tuple(files or ()), days=tuple(days or ()),
                       train=TrainConfig(**train), detector=DetectorConfig(**detector),
                       resume=resume, register_model=register_model)
        job.train.check_model()
    except (ValidationError, ValueError) as exc:
        fail(f"{command}: {_short(exc)}", 2)
    return job


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):  # name the option the user typed
        parts = [f"--{str(e['loc'][-1]).replace('_', '-')}: {e['msg']}" if e["loc"] else e["msg"]
                 for e in exc.errors()]
        return "; ".join(parts)
    return one_line(exc)
