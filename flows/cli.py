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
from flows import cli_options as o
from flows.cli_support import fail, run_flow_command, ui_commands

# Nightly hosts are often offline: no usage telemetry unless the user turns it back on.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# The terminal gets flowae's own lines (one per failure); Prefect's run logs, tracebacks included,
# still go to its API (the Prefect UI) and flowae writes tracebacks to an error log file.
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

app = typer.Typer(
    name="flowae",
    help="Unsupervised network-intrusion detection with LSTM autoencoders (CIC-IDS2017).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def echo_ui_command(settings) -> None:
    """The command that serves the printed links (a local store, default UI address), with
    absolute paths so it works from any directory."""
    if "mlflow" in (commands := ui_commands(settings)) and not settings.mlflow_ui_url:
        typer.echo(f"(the MLflow UI of this store: {commands['mlflow']})")


def _settings(**overrides):
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        fail(str(exc), 2)


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
    from components.progress import interactive

    for path in write_days(cfg, out, progress=interactive()):  # a bar on a terminal, else a line per file
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
    data: Annotated[Path | None, typer.Option(
        "--data", help="Folder written by `flowae ingest --out` (or data: in the --job file).")] = None,
    job_file: o.JobFile = None, files: o.Files = None, days: o.Days = None, model: o.Model = None, epochs: o.Epochs = None,
    window: o.Window = None, stride: o.Stride = None, hidden: o.Hidden = None,
    batch_size: o.BatchSize = None, lr: o.Lr = None, patience: o.Patience = None,
    device: o.Device = None, seed: o.Seed = None, scaler: o.Scaler = None,
    calibration: o.Calibration = None, target_fpr: o.TargetFpr = None,
    score_stride: o.ScoreStride = None, aggregate: o.Aggregate = None, windows: o.Windows = None,
    mahalanobis_inputs: o.MahalanobisInputs = None,
    resume: Annotated[bool | None, typer.Option("--resume", help="Continue from the last checkpoint.")] = None,
    register: Annotated[bool | None, typer.Option("--register/--no-register",
                                                  help="Register the model as a new version (default on).")] = None,
    challenger: Annotated[bool, typer.Option(
        "--challenger", help="Also make the new version the challenger (default: no alias moves).")] = False,
) -> None:
    """Train, calibrate and evaluate one model on benign windows; register it (as the challenger
    with --challenger)."""
    settings = _settings()
    job = o.build_job(settings, data, job_file=job_file, files=files, days=days, model=model, epochs=epochs,
                      window=window, stride=stride, hidden=hidden, batch_size=batch_size, lr=lr,
                      patience=patience, device=device, seed=seed, scaler=scaler,
                      calibration=calibration, target_fpr=target_fpr, score_stride=score_stride,
                      aggregate=aggregate, windows=windows, mahalanobis_inputs=mahalanobis_inputs, resume=resume,
                      register_model=register)

    def work(api):
        from flows.train import train_flow

        api.wait_ready()
        return train_flow(job, challenger=challenger and job.register_model)

    summary = run_flow_command("train", settings.work_dir, work)
    typer.echo(f"model {summary['model']} trained on {summary['device']}: best val loss "
               f"{summary['best_val_loss']:.5f} at epoch {summary['best_epoch']} of {summary['epochs_run']}")
    typer.echo(f"threshold {summary['threshold']:.6g} ({summary['calibration']}); test AUROC "
               f"{summary['test_auroc']:.4f}, AUPRC {summary['test_auprc']:.4f}, F1 {summary['test_f1']:.4f}, "
               f"FPR {summary['test_fpr']:.4f}")
    if summary.get("version"):
        alias = "as challenger" if summary.get("challenger") else "(no alias moved; --challenger makes it the challenger)"
        typer.echo(f"registered {settings.registered_model_name} version {summary['version']} {alias}")
    echo_ui_command(settings)
    typer.echo(f"MLflow run id: {summary['run_id']}")
    typer.echo(f"open: {summary['link']}")


@app.command()
def evaluate(
    model_uri: Annotated[str, typer.Option("--model-uri", help="models:/flowae@champion, runs:/ID/model, ...")],
    data: Annotated[Path, typer.Option("--data", help="Labelled folder written by `flowae ingest --out`.")],
    include_training_data: Annotated[bool, typer.Option(
        "--include-training-data",
        help="Also count the flows the model was fitted or calibrated on (the run says so).")] = False,
) -> None:
    """Evaluate a model on labelled curated data: AUROC, AUPRC, F1, FPR, recall per attack label.

    Flows the model was fitted or calibrated on (its recorded training files, same name and
    content, its recorded split) are left out unless --include-training-data is given."""
    settings = _settings()

    def work(api):
        from flows.evaluate import evaluate_flow

        api.wait_ready()
        return evaluate_flow(model_uri, str(data), include_training_data)

    result = run_flow_command("evaluate", settings.work_dir, work)
    for line in result["left_out"]:
        typer.echo(line)
    typer.echo(result["summary"])
    typer.echo(f"MLflow run id: {result['run_id']}  ({settings.evaluate_experiment})")
    typer.echo(f"open: {result['link']}")


@app.command()
def promote(rollback: Annotated[bool, typer.Option("--rollback", help="Restore the previous champion.")] = False,
            version: Annotated[str | None, typer.Option(
                "--version", help="Promote only this version: refused unless it is still the challenger.")] = None,
            ) -> None:
    """Move the champion alias to the challenger when it wins on the same data (or roll back)."""
    settings = _settings()
    if rollback and version is not None:
        fail("promote: --rollback and --version do not go together", 2)

    def work(api):
        from flows.promote import promote_flow

        api.wait_ready()
        return promote_flow(rollback, version=version)

    result = run_flow_command("promote", settings.work_dir, work)
    name = settings.registered_model_name
    verb = "promoted" if result["promoted"] else "kept"
    typer.echo(f"{verb}: {result['reason']}; {name}@champion is version {result['champion_after']}")


#: ``--data a.csv b.csv`` (what a shell makes of ``--data DIR/*.csv``): click gives an option one
#: value, so the values after it arrive as extra arguments and are taken as more inputs.
SEVERAL_AFTER_ONE_FLAG = {"allow_extra_args": True}


def data_inputs(ctx: typer.Context, data: list[str], command: str) -> tuple[str, ...]:
    """Every ``--data`` value, also those given after one ``--data`` flag."""
    extra = [a for a in ctx.args if a.startswith("-")]
    if extra:
        fail(f"{command}: unexpected option {extra[0]}", 2)
    return (*data, *ctx.args)


@app.command(context_settings=SEVERAL_AFTER_ONE_FLAG)
def retrain(
    ctx: typer.Context,
    data: Annotated[list[str], typer.Option(
        "--data", help="Raw CSV/parquet files, folders or globs; several after one --data (a shell glob) "
                       "or --data repeated.")],
    out: Annotated[Path | None, typer.Option("--out", help="Ingest folder (default: FLOWAE_CURATED_DIR).")] = None,
    job_file: o.JobFile = None,
    files: o.Files = None, days: o.Days = None, model: o.Model = None, epochs: o.Epochs = None,
    window: o.Window = None, stride: o.Stride = None, hidden: o.Hidden = None,
    batch_size: o.BatchSize = None, lr: o.Lr = None, patience: o.Patience = None,
    device: o.Device = None, seed: o.Seed = None, scaler: o.Scaler = None,
    calibration: o.Calibration = None, target_fpr: o.TargetFpr = None,
    score_stride: o.ScoreStride = None, aggregate: o.Aggregate = None, windows: o.Windows = None,
    mahalanobis_inputs: o.MahalanobisInputs = None,
    promote: Annotated[bool, typer.Option("--promote/--no-promote", help="Run the promotion step.")] = True,
) -> None:
    """ingest -> validate -> windows -> train -> calibrate -> evaluate -> register -> promote."""
    inputs = data_inputs(ctx, data, "retrain")
    settings = _settings()
    job = o.build_job(settings, out, default_data=settings.curated_dir, job_file=job_file, command="retrain",
                      files=files, days=days, model=model,
                      epochs=epochs, window=window, stride=stride, hidden=hidden,
                      batch_size=batch_size, lr=lr, patience=patience, device=device, seed=seed,
                      scaler=scaler, calibration=calibration, target_fpr=target_fpr,
                      score_stride=score_stride, aggregate=aggregate, windows=windows, mahalanobis_inputs=mahalanobis_inputs)

    def work(api):
        from components.jobs import RetrainJob
        from flows.retrain import retrain_flow

        api.wait_ready()
        return retrain_flow(RetrainJob(inputs=inputs, train=job, promote=promote))

    summary = run_flow_command("retrain", job.data, work)
    typer.echo(f"registered {settings.registered_model_name} version {summary['version']} "
               f"({summary['model']}): test AUROC {summary['test_auroc']:.4f}, F1 {summary['test_f1']:.4f}, "
               f"FPR {summary['test_fpr']:.4f}")
    typer.echo(f"promotion: {'promoted' if summary['promoted'] else 'not promoted'} ({summary['decision']}); "
               f"champion is version {summary['champion']}")
    echo_ui_command(settings)
    typer.echo(f"MLflow parent run id: {summary['parent_run_id']}")
    typer.echo(f"open: {summary['link']}")


@app.command(context_settings=SEVERAL_AFTER_ONE_FLAG)
def compare(
    ctx: typer.Context,
    data: Annotated[list[str], typer.Option(
        "--data", help="Raw CSV/parquet files, folders or globs; several after one --data (a shell glob) "
                       "or --data repeated.")],
    models: Annotated[str, typer.Option("--models", help="all, or a comma-separated list.")] = "all",
    out: Annotated[Path | None, typer.Option("--out", help="Ingest folder (default: FLOWAE_CURATED_DIR).")] = None,
    job_file: o.JobFile = None, files: o.Files = None, days: o.Days = None, epochs: o.Epochs = None,
    window: o.Window = None, stride: o.Stride = None, hidden: o.Hidden = None, batch_size: o.BatchSize = None, lr: o.Lr = None,
    patience: o.Patience = None, device: o.Device = None, seed: o.Seed = None, scaler: o.Scaler = None,
    calibration: o.Calibration = None, target_fpr: o.TargetFpr = None,
    score_stride: o.ScoreStride = None, aggregate: o.Aggregate = None, windows: o.Windows = None,
    mahalanobis_inputs: o.MahalanobisInputs = None,
) -> None:
    """Train and evaluate every model on the same data and split, side by side with baselines."""
    inputs = data_inputs(ctx, data, "compare")
    settings = _settings()
    job = o.build_job(settings, out, default_data=settings.curated_dir, job_file=job_file, command="compare",
                      files=files, days=days, epochs=epochs,
                      window=window, stride=stride, hidden=hidden, batch_size=batch_size, lr=lr,
                      patience=patience, device=device, seed=seed, scaler=scaler,
                      calibration=calibration, target_fpr=target_fpr, score_stride=score_stride,
                      aggregate=aggregate, windows=windows, mahalanobis_inputs=mahalanobis_inputs, register_model=False)
    try:
        from components.detect.compare import resolve_models

        resolve_models(models)
    except ValueError as exc:
        fail(f"compare: {exc}", 2)

    def work(api):
        from components.jobs import CompareJob
        from flows.compare import compare_flow

        api.wait_ready()
        return compare_flow(CompareJob(inputs=inputs, train=job, models=models))

    result = run_flow_command("compare", job.data, work)
    typer.echo(result["leaderboard"])
    typer.echo(f"best: {result['best']}: {result['best_link']}")
    typer.echo(f"MLflow parent run id: {result['parent_run_id']}; every model, best first:")
    typer.echo(f"open: {result['link']}")
    echo_ui_command(settings)


@app.command()
def score(
    inputs: Annotated[list[str], typer.Argument(help="CSV/parquet logs, folders or globs (any header variant).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for <stem>.scored.parquet and summary.json.")],
    model_uri: Annotated[str, typer.Option("--model-uri")] = "models:/flowae@champion",
    device: o.Device = None,
    runner: Annotated[str, typer.Option(help="local | dask (map files and row groups over a cluster)")] = "local",
    address: Annotated[str | None, typer.Option(help="Dask scheduler, tcp://HOST:PORT (--runner dask)")] = None,
) -> None:
    """Batch-score traffic logs with a registered model: every row, a score, a flag, its top features."""
    from components.data.ingest import plan_outputs
    from components.report.night import host_lines, missing_line

    settings = _settings()
    if out.exists() and not out.is_dir():
        fail(f"score: --out {out} is a file, not a folder", 2)
    planned, notes = plan_outputs(inputs)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    if not planned:
        fail("score: no input files found", 2)
    if runner not in ("local", "dask") or (runner == "dask" and not address):
        fail("score: --runner is local or dask, and dask needs --address tcp://HOST:PORT", 2)

    def work(api):
        from components.jobs import ScoreJob
        from flows.score import run_score_flow

        api.wait_ready()
        return run_score_flow(ScoreJob(inputs=tuple(inputs), out=out, model_uri=model_uri,
                                       device=device or settings.device, progress=True, runner=runner,
                                       address=address))

    summary = run_flow_command("score", out, work)
    for line in host_lines(summary.get("entities")):
        typer.echo(line)
    for entry in summary["files"]:
        name = Path(entry["source"]).name
        if entry["status"] == "ok":
            typer.echo(f"{name}: {entry['flows']} flows, {entry['anomalies']} anomalies -> {entry['output']}")
            if entry.get("missing_columns"):
                typer.echo(f"warning: {missing_line(entry)}", err=True)
        else:
            typer.echo(f"{name}: failed, {entry['error']}", err=True)
    typer.echo(f"{summary['flows']} flows, {summary['anomalies']} anomalies ({summary['rate']:.2%}) "
               f"with {summary['model']}; summary: {summary['summary_path']}")
    if summary.get("drift") and summary["drift"].get("warning"):
        typer.echo(f"warning: {summary['drift']['warning']}", err=True)
    failed = [e for e in summary["files"] if e["status"] != "ok"]
    if failed:
        fail(f"score: {len(failed)} of {len(summary['files'])} files failed", 1)


@app.command()
def serve() -> None:
    """Run the scheduled deployments: retrain (weekly) and score-nightly (daily) until stopped."""
    settings = _settings()
    typer.echo(f"retrain: '{settings.retrain_cron}' on {', '.join(settings.retrain_inputs)}; "
               f"score-nightly: '{settings.score_cron}' on {settings.inbox_dir} -> {settings.scored_dir}")

    def work(api):
        from flows.serve import serve_forever

        api.wait_ready()
        typer.echo(f"Prefect API: {api.url}")
        serve_forever(settings)

    run_flow_command("serve", settings.work_dir, work)


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
