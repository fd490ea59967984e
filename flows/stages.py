"""The training stages as Prefect tasks: windows -> train -> calibrate -> evaluate -> register.

Thin by design: each task opens the MLflow run it logs into (``RunRef``: one run for ``flowae
train``, a child run per stage under a parent for ``flowae retrain``), calls ``components`` and
hands the next stage *paths*: the prepared flows (``x.npy`` memory-mapped, per-flow arrays), the
trained and the calibrated detector folders, as the typed results of
``components/stage_results.py``. Nothing big travels through Prefect.
"""
from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import mlflow
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from pydantic import BaseModel, ConfigDict

from components.detect.detector import Detector
from components.detect.evaluation import evaluate
from components.detect.fit import calibrate_detector, prepare_job, train_detector
from components.detect.holdout import data_digest, score_test
from components.jobs import TrainJob
from components.learn.dataset import load_prepared, save_prepared
from components.learn.training import resolve_device
from components.progress import interactive
from components.report.records import (
    epoch_logger,
    key_figures,
    log_calibration,
    log_data,
    log_evaluation,
    log_job,
    log_training,
    reconstructions,
)
from components.report.tables import summary_table
from components.serve.packaging import input_example, log_detector
from components.serve.registry import package_version, register
from components.settings import load_settings
from components.stage_results import Calibrated, Evaluated, Prepared, Registered, Trained
from components.tracking import model_link, run_link, set_description, stage_run


class RunRef(BaseModel):
    """Where a stage logs: reopen ``run_id``, or open a child run of ``parent_run_id``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    experiment: str
    run_id: str | None = None
    parent_run_id: str | None = None

    def open(self, stage: str):
        return stage_run(load_settings(), self.experiment, stage, parent_run_id=self.parent_run_id,
                         run_id=self.run_id, tags={"flowae.stage": stage},
                         system_metrics=stage == "train")


def checkpoint_for(job: TrainJob, digest: str) -> Path:
    """Same job on the same data -> same checkpoint folder, so ``--resume`` finds it."""
    key = job.model_copy(update={"resume": False, "register_model": True}).model_dump_json()
    name = hashlib.sha256((key + digest).encode()).hexdigest()[:16]
    return load_settings().checkpoint_dir / f"{job.train.model}-{name}" / "last.pt"


@task(name="windows")
def windows_task(job: TrainJob, work: str, run: RunRef) -> Prepared:
    """Curated files -> time split, benign-fitted scaling, windows (saved for the next stages)."""
    with run.open("windows") as active:
        prepared = prepare_job(job)
        log_data(prepared)
        folder = save_prepared(prepared.data, Path(work) / "prepared")
        counts = prepared.data.split.counts(prepared.data.flows.is_benign)
    say(f"windows: {len(prepared.data.train_idx):,} training and {len(prepared.data.val_idx):,} validation "
        f"windows from {len(prepared.data.flows):,} flows", active)
    return Prepared(folder=folder, info=prepared.record(job), digest=data_digest(prepared.digests),
                    flows=len(prepared.data.flows), split=counts,
                    train_windows=len(prepared.data.train_idx), val_windows=len(prepared.data.val_idx))


@task(name="train")
def train_task(job: TrainJob, prepared: Prepared, work: str, run: RunRef) -> Trained:
    """The run that trains holds the hyperparameters (the whole job) and, later, the model."""
    with run.open("train") as active:
        log_job(job)
        data = load_prepared(prepared.folder)
        detector, result = train_detector(data, job, checkpoint=checkpoint_for(job, prepared.info.data_digest),
                                          on_epoch=epoch_logger(), progress=interactive())
        log_training(result, data)
        detector.info = detector.info.merged(prepared.info)
        folder = detector.save(Path(work) / "trained")
    say(f"train: {job.train.model} on {result.device}, best validation loss {result.best_val_loss:.4g} at epoch "
        f"{result.best_epoch} of {len(result.history)}", active)
    return Trained(folder=folder, device=result.device, best_epoch=result.best_epoch,
                   best_val_loss=result.best_val_loss, epochs_run=len(result.history),
                   stopped_early=result.stopped_early, run_id=active.info.run_id)


@task(name="calibrate")
def calibrate_task(job: TrainJob, prepared: Prepared, trained: Trained, work: str, run: RunRef) -> Calibrated:
    with run.open("calibrate") as active:
        data = load_prepared(prepared.folder)
        detector = Detector.load(trained.folder)
        device = str(resolve_device(job.train.device))
        scores = calibrate_detector(detector, data, job.detector, seed=job.train.seed, device=device)
        log_calibration(detector, scores)
        folder = detector.save(Path(work) / "detector")
    cal = detector.calibration
    say(f"calibrate: threshold {cal.threshold:.4g} ({cal.method}, target FPR {cal.target_fpr:g}, "
        f"{cal.n_flows:,} benign flows)", active)
    return Calibrated(folder=folder, threshold=cal.threshold, method=cal.method, fallback=cal.fallback,
                      calibration_flows=cal.n_flows)


@task(name="evaluate")
def evaluate_task(prepared: Prepared, calibrated: Calibrated, run: RunRef) -> Evaluated:
    """The test flows (later benign part of the training files, every other file), scored and
    measured; plots in MLflow, the summary as a Prefect artifact."""
    with run.open("evaluate") as active:
        data = load_prepared(prepared.folder)
        detector = Detector.load(calibrated.folder)
        scored = score_test(detector, data)
        result = evaluate(scored.scores, scored.labels, detector.threshold, scored.window_scores,
                          scored.window_labels)
        log_evaluation(scored, result, detector, reconstructions(detector, data.x, scored))
        set_description(key_figures(detector.name, result, detector.info.training_files, detector.info.files))
    say(f"evaluate: test AUROC {result.auroc:.4f}, F1 {result.f1:.4f}, FPR on benign {result.fpr:.4f}", active)
    create_markdown_artifact(key="evaluation", markdown=f"## {detector.name}: test flows\n\n"
                             + summary_table(result), description=f"evaluation of {detector.name}")
    return Evaluated(auroc=result.auroc, auprc=result.auprc, f1=result.f1, fpr=result.fpr,
                     summary_md=summary_table(result))


@task(name="register")
def register_task(calibrated: Calibrated, metrics: Evaluated, run: RunRef, register_model: bool = True,
                  challenger: bool = False, train_run_id: str | None = None) -> Registered:
    """Log the detector as one MLflow model, named after its family, in the run that trained it
    (``train_run_id``; else ``run``), so that the registered version's source run is the training
    run; then (unless told not to) register a version of it from ``run``'s "register" stage.
    ``challenger`` also points that alias at the version (``retrain``, ``train --challenger``),
    otherwise no alias moves."""
    detector = Detector.load(calibrated.folder)
    settings = load_settings()
    source = (stage_run(settings, run.experiment, "train", run_id=train_run_id) if train_run_id
              else run.open("register"))
    with source as trained:
        model = log_detector(detector, input_example(detector), name=detector.name)
        trained_run = trained.info.run_id
    if not register_model:
        return Registered(version=None, model_uri=model.model_uri)
    with run.open("register") as active:
        tags = {"flowae.family": detector.name, "flowae.data_digest": detector.info.data_digest or "",
                "flowae.version": package_version(), "flowae.prefect_flow_run_id": str(flow_run.get_id()),
                "flowae.mlflow_run_id": trained_run, "flowae.threshold": f"{detector.threshold:.6g}",
                "flowae.calibration": detector.calibration.method,
                **{f"metric.{k}": f"{getattr(metrics, k):.4f}" for k in ("auroc", "auprc", "f1", "fpr")}}
        version = register(settings, model.model_uri, tags,
                           description=f"{detector.name} trained on {', '.join(detector.info.training_files)}",
                           challenger=challenger)
        link = model_link(settings, settings.registered_model_name, version)
        mlflow.set_tags({"flowae.registered_model": settings.registered_model_name,
                         "flowae.registered_version": version, "flowae.model_uri": model.model_uri,
                         "flowae.source_run_id": trained_run})
        if run.run_id is None:  # a stage run of its own (retrain); one run (train) keeps its figures
            set_description(f"Registered {detector.name} as version {version} of "
                            f"{settings.registered_model_name}{' (challenger)' if challenger else ''}: {link}")
    say(f"register: {detector.name} is version {version} of {settings.registered_model_name}"
        f"{', challenger' if challenger else ''}; registry {link}", active)
    return Registered(version=version, model_uri=model.model_uri, challenger=challenger)


def say(line: str, active=None) -> None:
    """A stage's one line in the Prefect run log: its key figure and its MLflow run."""
    from prefect import get_run_logger

    if active is not None:
        line += f"; MLflow {run_link(load_settings(), active.info.experiment_id, active.info.run_id)}"
    with contextlib.suppress(Exception):  # outside a Prefect run (a task's .fn() in a test): no log
        get_run_logger().info(line)
