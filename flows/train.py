"""``flowae train``: one MLflow run that holds windows, training, calibration, the test evaluation
and the packaged model, registered as a new version (the ``challenger`` with ``--challenger``)."""
from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from components.data.readers import sha256_file
from components.detect.fit import resolve_files
from components.detect.holdout import data_digest
from components.jobs import TrainJob
from components.report.tables import summary_markdown
from components.settings import load_settings
from components.tracking import ensure_experiment, new_run, run_link
from flows.cli_support import flow_job, inputs_label
from flows.stages import (
    RunRef,
    calibrate_task,
    checkpoint_for,
    evaluate_task,
    register_task,
    train_task,
    windows_task,
)
from flows.workspace import workspace


def _run_for(job: TrainJob) -> str:
    """The MLflow run: the one a crashed run of the same job left (``--resume``), else a new one."""
    settings = load_settings()
    files, _, _ = resolve_files(job)
    marker = checkpoint_for(job, data_digest([sha256_file(f) for f in files])).parent / "mlflow_run_id"
    if job.resume and marker.is_file():
        return marker.read_text().strip()
    run_id = new_run(settings, settings.train_experiment, job.train.model, tags={"flowae.command": "train"})
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(run_id)
    return run_id


def _flow_run_name() -> str:
    """``train lstm_ae monday``: what the Prefect run does."""
    job = flow_job(TrainJob)
    if job is None:
        return "train"
    return f"train {job.train.model} {inputs_label(job.files or job.days or [job.data])}"


@flow(name="train", log_prints=True, flow_run_name=_flow_run_name)
def train_flow(job: TrainJob, challenger: bool = False) -> dict:
    """Train, calibrate, evaluate and register one model on an ingest output folder; the
    ``challenger`` alias moves to the new version only when asked (``--challenger``), so a trial
    run never changes what the next ``flowae promote`` compares."""
    settings = load_settings()
    run_id = _run_for(job)
    run = RunRef(experiment=settings.train_experiment, run_id=run_id)
    with workspace(settings.work_dir, run_id) as work:
        windows = windows_task(job, str(work), run)
        trained = train_task(job, windows, str(work), run)
        calibrated = calibrate_task(job, windows, trained, str(work), run)
        metrics = evaluate_task(windows, calibrated, run)
        registered = register_task(calibrated, metrics, run, job.register_model,
                                   challenger=challenger)  # one run: it trained and holds the model
    experiment_id = ensure_experiment(settings, settings.train_experiment)
    summary = {"run_id": run_id, "model": job.train.model, "device": trained.device,
               "best_epoch": trained.best_epoch, "best_val_loss": trained.best_val_loss,
               "epochs_run": trained.epochs_run, "threshold": calibrated.threshold,
               "calibration": calibrated.method, "train_windows": windows.train_windows,
               "val_windows": windows.val_windows, "test_auroc": metrics.auroc,
               "test_auprc": metrics.auprc, "test_f1": metrics.f1, "test_fpr": metrics.fpr,
               "version": registered.version, "challenger": registered.challenger,
               "model_uri": registered.model_uri,
               "link": run_link(settings, experiment_id, run_id)}
    create_markdown_artifact(key="train-summary", markdown=summary_markdown(f"train {job.train.model}", summary),
                             description=f"training of {job.train.model}")
    return summary
