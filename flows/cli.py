"""The ``flowae`` command line: one command per pipeline stage, names fixed by DESIGN.md.

Commands parse arguments, load settings and call a flow; the work lives in ``flows/`` and
``components/``. Every failure ends with one line on stderr and a non-zero exit code.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from components.settings import SettingsError, load_settings
from flows.cli_support import fail, one_line, run_flow_command

# Nightly hosts are often offline: no usage telemetry unless the user turns it back on.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

app = typer.Typer(
    name="flowae",
    help="Unsupervised network-intrusion detection with LSTM autoencoders (CIC-IDS2017).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _settings(**overrides):
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        fail(str(exc), 2)


def _not_built(command: str) -> None:
    fail(f"'{command}' is not built yet in this version of flowae", 3)


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", help="Folder for the day files.")],
    rows: Annotated[int, typer.Option(min=1, help="Flows per day file.")] = 10_000,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    variant: Annotated[str, typer.Option(help="MachineLearningCVE | TrafficLabelling")] = "MachineLearningCVE",
    format: Annotated[str, typer.Option("--format", help="csv | parquet")] = "csv",
    attacks: Annotated[
        list[str] | None,
        typer.Option("--attacks", help="Attack families to inject (repeat); default: all. 'none' for benign only."),
    ] = None,
    days: Annotated[list[str] | None, typer.Option("--days", help="Day files to write (repeat); default: all.")] = None,
) -> None:
    """Write synthetic CIC-IDS2017 day files with the real headers and quirks."""
    from components.synth import SynthConfig, write_days

    try:
        cfg = SynthConfig(rows=rows, seed=seed, variant=variant, format=format,
                          attacks=attacks, days=days)
    except ValueError as exc:
        fail(f"synth: {exc}", 2)
    for path in write_days(cfg, out, progress=True):
        typer.echo(str(path))


@app.command()
def ingest(
    inputs: Annotated[list[str], typer.Argument(
        help="CSV/parquet files (also .csv.gz), zip archives (each CSV/parquet member), "
             "folders or globs.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder: curated/, quarantine/, manifest.json.")],
) -> None:
    """Raw CIC-IDS2017 files -> validated curated parquet + quarantine + manifest."""
    from components.data.capture_order import FileOrder
    from components.data.ingest import FileReport, check_out_dir, plan_outputs

    _settings()  # fail early, with one line, on a bad setting
    try:
        check_out_dir(out)
    except ValueError as exc:
        fail(f"ingest: {exc}", 2)
    planned, notes = plan_outputs(inputs)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    if not planned:
        fail("ingest: no input files found", 2)

    def work(api):
        from flows.ingest import ingest_flow

        api.wait_ready()
        return ingest_flow(inputs, str(out), progress=True)

    result = run_flow_command("ingest", out, work)
    for note in result["notes"]:
        if note not in notes:
            typer.echo(f"note: {note}", err=True)
    warning = FileOrder(**result["order"]).warning()
    if warning:
        typer.echo(f"note: {warning}", err=True)
    for entry in result["files"]:
        typer.echo(FileReport(**entry).one_line())
    failed = [e for e in result["files"] if e["status"] != "ok"]
    typer.echo(f"manifest: {result['manifest']}")
    if failed:
        fail(f"ingest: {len(failed)} of {len(result['files'])} files failed", 1)


@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", help="Folder written by `flowae ingest --out`.")],
    model: Annotated[str, typer.Option("--model", help="Model family or baseline name.")] = "lstm_ae",
    epochs: Annotated[int | None, typer.Option(min=1)] = None,
    window: Annotated[int | None, typer.Option(min=2)] = None,
    stride: Annotated[int | None, typer.Option(min=1)] = None,
    hidden: Annotated[int | None, typer.Option(min=1)] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1)] = None,
    lr: Annotated[float | None, typer.Option(min=0.0)] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda")] = None,
    seed: Annotated[int | None, typer.Option(min=0)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint.")] = False,
) -> None:
    """Train one model on benign-only windows and log the run to MLflow."""
    settings = _settings()
    options = {"model": model, "epochs": epochs, "window": window, "stride": stride, "hidden": hidden,
               "batch_size": batch_size, "lr": lr, "device": device or settings.device,
               "seed": settings.seed if seed is None else seed}
    config = {k: v for k, v in options.items() if v is not None}
    try:
        from components.learn.training import TrainConfig

        TrainConfig(**config).check_model()
    except ValueError as exc:
        fail(f"train: {one_line(exc)}", 2)

    def work(api):
        from flows.train import train_flow

        api.wait_ready()
        return train_flow(str(data), config, resume)

    summary = run_flow_command("train", None, work)
    typer.echo(f"model {summary['model']} trained on {summary['device']}: best val loss "
               f"{summary['best_val_loss']:.5f} at epoch {summary['best_epoch']}")
    typer.echo(f"MLflow run id: {summary['run_id']}")


@app.command()
def evaluate(
    model_uri: Annotated[str, typer.Option("--model-uri")],
    data: Annotated[Path, typer.Option("--data")],
) -> None:
    """Evaluate a registered model on curated data (AUROC, AUPRC, per-attack recall)."""
    _not_built("evaluate")


@app.command()
def promote(rollback: Annotated[bool, typer.Option("--rollback")] = False) -> None:
    """Move the champion alias to the newest validated version (or back)."""
    _not_built("promote")


@app.command()
def retrain(data: Annotated[list[str], typer.Option("--data")]) -> None:
    """ingest -> validate -> windows -> train -> calibrate -> evaluate -> register -> promote."""
    _not_built("retrain")


@app.command()
def compare(
    data: Annotated[list[str], typer.Option("--data")],
    models: Annotated[str, typer.Option("--models")] = "all",
) -> None:
    """Train and evaluate several models on the same data, side by side with baselines."""
    _not_built("compare")


@app.command()
def score(
    inputs: Annotated[list[str], typer.Argument()],
    out: Annotated[Path, typer.Option("--out")],
    model_uri: Annotated[str, typer.Option("--model-uri")] = "models:/flowae@champion",
) -> None:
    """Batch-score traffic logs with a registered model."""
    _not_built("score")


@app.command()
def serve() -> None:
    """Run the scheduled deployments: retrain (weekly) and score-nightly (daily)."""
    _not_built("serve")


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option("--workdir", help="Where demo data goes.")] = Path("data/demo"),
    rows: Annotated[int, typer.Option(min=100)] = 6_000,
) -> None:
    """The whole pipeline on synthetic data, on the embedded default MLflow store."""
    settings = _settings()

    def work(api):
        from flows.demo import run_demo

        api.wait_ready()
        return run_demo(settings, workdir=workdir, rows=rows)

    run_flow_command("demo", workdir, work)


def main() -> None:  # pragma: no cover - console entry point
    app()
