"""The training options ``train``, ``retrain`` and ``compare`` share, and the job they build.

Why one place: the three commands must read the same flags the same way, and the job a command
builds is validated once (pydantic) before any server starts or any file is read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

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


JobFile = Annotated[Path | None, typer.Option(
    "--job", help="A YAML TrainJob (data, files, days, train, split, detector); flags given here override it.")]


def build_job(settings: Settings, data: Path | None, *, default_data: Path | None = None,
              job_file: Path | None = None, files=None, days=None,
              model=None, epochs=None, window=None, stride=None, hidden=None, batch_size=None, lr=None,
              patience=None, device=None, seed=None, scaler=None, calibration=None, target_fpr=None,
              score_stride=None, aggregate=None, windows=None, mahalanobis_inputs=None,
              resume: bool | None = None, register_model: bool | None = None, command: str = "train"):
    """A validated ``TrainJob``: the recommended defaults, then the settings (device, seed and
    ``default_data``), then ``--job FILE.yaml``, then the flags the user gave (None: not given). A bad
    option or job file ends the command with one line and exit code 2."""
    from components.jobs import JobFileError, read_job_file, train_job
    from components.learn.training import check_model

    from_settings = {"data": default_data, "train": {"device": settings.device, "seed": settings.seed}}
    options = {
        "data": data, "files": tuple(files) if files else None, "days": tuple(days) if days else None,
        "resume": resume, "register_model": register_model,
        "train": {"model": model, "epochs": epochs, "window": window, "stride": stride, "hidden": hidden,
                  "batch_size": batch_size, "lr": lr, "patience": patience, "scaler": scaler,
                  "device": device, "seed": seed},
        "detector": {"calibration": calibration, "target_fpr": target_fpr,
                     "mahalanobis_inputs": mahalanobis_inputs,
                     "rule": {"stride": score_stride, "aggregate": aggregate, "windows": windows}}}
    try:
        from_file = read_job_file(job_file) if job_file is not None else None
        if data is None and default_data is None and not (from_file or {}).get("data"):
            fail(f"{command}: --data is needed (or a --job file with data:)", 2)
        job = train_job(from_settings, from_file, options)
        check_model(job.train)
        return job
    except JobFileError as exc:
        fail(f"{command}: --job {exc}", 2)
    except (ValidationError, ValueError) as exc:
        fail(f"{command}: {_short(exc)}", 2)


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):  # name the option the user typed
        parts = [f"--{str(e['loc'][-1]).replace('_', '-')}: {e['msg']}" if e["loc"] else e["msg"]
                 for e in exc.errors()]
        return "; ".join(parts)
    return one_line(exc)
