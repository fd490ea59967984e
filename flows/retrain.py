"""``flowae retrain``: ingest -> validate -> windows -> train -> calibrate -> evaluate -> register
-> promote, one Prefect flow whose stages are its tasks, under one parent MLflow run with a child
run per stage (experiment ``flowae-retrain``).

The version registered becomes the ``challenger`` and the promote step compares *that version*:
when another run moved ``challenger`` meanwhile, the promotion is refused (recorded in
``flowae-registry`` and on the parent run) and the flow fails with that one-line reason."""
from __future__ import annotations

import json
from pathlib import Path

import mlflow
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from components.data.ingest import manifest_failures
from components.jobs import RetrainJob
from components.report.records import log_job, retrain_description
from components.report.tables import summary_markdown
from components.serve.promotion import PromotionRefused
from components.settings import load_settings
from components.stage_results import Validated
from components.tracking import (
    ensure_experiment,
    model_link,
    new_run,
    run_link,
    set_description,
    stage_run,
)
from flows.cli_support import flow_job, inputs_label
from flows.ingest import ingest_flow
from flows.promote import promote_flow
from flows.stages import (
    RunRef,
    calibrate_task,
    evaluate_task,
    register_task,
    say,
    train_task,
    windows_task,
)
from flows.workspace import workspace


class ValidationFailed(ValueError):
    """Inputs that failed ingest or their contract checks: no model is trained on them."""


@task(name="validate")
def validate_task(ingest: dict, run: RunRef) -> Validated:
    """The gate before training: every input ingested, none empty, the GX suite passed."""
    manifest = json.loads(Path(ingest["manifest"]).read_text())
    files = manifest["files"]
    failed, gx_failed = manifest_failures(manifest)
    with run.open("validate") as active:
        mlflow.log_metrics({"files": len(files), "files_failed": len(failed), "gx_failed": len(gx_failed),
                            "rows_curated": sum(f["rows_curated"] for f in files),
                            "rows_quarantined": sum(f["rows_quarantined"] for f in files)})
        mlflow.log_dict(manifest, "ingest/manifest.json")
        if ingest.get("mlflow_run_id"):
            mlflow.set_tag("flowae.ingest_run_id", ingest["mlflow_run_id"])
    say(f"validate: {len(files) - len(failed)} of {len(files)} inputs ingested, {len(gx_failed)} failed the "
        f"data contract, {sum(f['rows_curated'] for f in files):,} rows", active)
    if failed:
        raise ValidationFailed(f"{len(failed)} of {len(files)} inputs failed ingest: {'; '.join(failed)}")
    if gx_failed:
        raise ValidationFailed(f"data contract (Great Expectations) failed on: {', '.join(gx_failed)}")
    return Validated(files=len(files), rows=sum(f["rows_curated"] for f in files))


def _flow_run_name() -> str:
    """``retrain lstm_ae monday``: what the Prefect run does."""
    job = flow_job(RetrainJob)
    if job is None:
        return "retrain"
    trained_on = job.train.days or job.train.files or job.inputs  # what it trains on, said shortest
    return f"retrain {job.train.train.model} {inputs_label(trained_on)}"


@flow(name="retrain", log_prints=True, flow_run_name=_flow_run_name)
def retrain_flow(job: RetrainJob) -> dict:
    settings = load_settings()
    train = job.train
    parent = new_run(settings, settings.retrain_experiment, f"retrain {train.train.model}",
                     tags={"flowae.command": "retrain", "flowae.model": train.train.model})
    with stage_run(settings, settings.retrain_experiment, "retrain", run_id=parent):
        log_job(train)  # the hyperparameters where people look first: on the parent (and the train run)
        mlflow.log_param("inputs", ", ".join(Path(i).name for i in job.inputs)[:6000])
    run = RunRef(experiment=settings.retrain_experiment, parent_run_id=parent)
    ingested = ingest_flow(list(job.inputs), str(train.data))
    validate_task(ingested, run)
    with workspace(settings.work_dir, parent) as work:
        windows = windows_task(train, str(work), run)
        trained = train_task(train, windows, str(work), run)
        calibrated = calibrate_task(train, windows, trained, str(work), run)
        metrics = evaluate_task(windows, calibrated, run)
        registered = register_task(calibrated, metrics, run, challenger=True, train_run_id=trained.run_id)
    try:  # exactly the version registered above: refused if another run moved challenger meanwhile
        decision = (promote_flow(version=registered.version) if job.promote
                    else {"promoted": False, "reason": "--no-promote"})
    except PromotionRefused as exc:
        with stage_run(settings, settings.retrain_experiment, "retrain", run_id=parent):
            mlflow.set_tags({"flowae.registered_version": registered.version, "flowae.promoted": "false",
                             "flowae.promotion_refused": str(exc)[:5000]})
        raise
    summary = {"parent_run_id": parent, "model": train.train.model, "version": registered.version,
               "promoted": decision["promoted"], "decision": decision.get("reason"),
               "champion": decision.get("champion_after"), "test_auroc": metrics.auroc,
               "test_auprc": metrics.auprc, "test_f1": metrics.f1, "test_fpr": metrics.fpr,
               "threshold": calibrated.threshold, "device": trained.device,
               "link": run_link(settings, ensure_experiment(settings, settings.retrain_experiment), parent)}
    with stage_run(settings, settings.retrain_experiment, "retrain", run_id=parent):
        mlflow.log_metrics({k: float(summary[k]) for k in ("test_auroc", "test_auprc", "test_f1", "test_fpr")
                            if summary[k] == summary[k]})
        mlflow.set_tags({"flowae.registered_version": summary["version"],
                         "flowae.promoted": str(summary["promoted"]).lower(),
                         "flowae.champion": str(summary["champion"])})
        set_description(retrain_description(summary, metrics.summary_md, model_link(
            settings, settings.registered_model_name, summary["version"])))
    create_markdown_artifact(key="retrain-summary", markdown=summary_markdown("retrain", summary),
                             description="retrain: registered version and promotion decision")
    return summary


def scheduled_job(inputs: list[str] | None = None, days: list[str] | None = None, model: str | None = None
                  ) -> RetrainJob:
    """The retrain a schedule runs: inputs, days and model from the settings unless given (no
    model anywhere: the recommended one)."""
    from components.jobs import train_job

    settings = load_settings()
    job = train_job(data=settings.curated_dir, days=tuple(days or settings.retrain_days),
                    train={"model": model or settings.retrain_model, "device": settings.device,
                           "seed": settings.seed})
    return RetrainJob(inputs=tuple(inputs or settings.retrain_inputs), train=job)


@flow(name="retrain-scheduled", log_prints=True)
def scheduled_retrain_flow(inputs: list[str] | None = None, days: list[str] | None = None,
                           model: str | None = None) -> dict:
    """The weekly deployment: retrain on the configured inputs (FLOWAE_RETRAIN_*)."""
    return retrain_flow(scheduled_job(inputs, days, model))
