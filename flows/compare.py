"""``flowae compare``: every family and baseline on the same windows and split, evaluated the same
way, as sibling child runs of one parent run (experiment ``flowae-compare``), with a leaderboard
(markdown and CSV artifacts, and printed)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import numpy as np
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from components.data.contract import BENIGN
from components.detect.compare import (
    job_for,
    leaderboard,
    resolve_models,
    run_model,
)
from components.jobs import CompareJob, TrainJob
from components.progress import interactive
from components.report import plots
from components.report.records import (
    epoch_logger,
    key_figures,
    log_calibration,
    log_data,
    log_evaluation,
    log_job,
    log_training,
)
from components.report.tables import leaderboard_markdown, other_day_note
from components.settings import load_settings
from components.stage_results import ModelRun
from components.tracking import (
    children_view,
    ensure_experiment,
    new_run,
    run_link,
    set_description,
    stage_run,
)
from flows.cli_support import flow_job, inputs_label
from flows.ingest import ingest_flow
from flows.workspace import workspace


@task(name="compare-model", task_run_name="compare-{spec}")
def compare_model_task(spec: str, job: TrainJob, parent: str, work: str) -> ModelRun:
    """One sibling run: train, calibrate and evaluate ``spec`` on the shared data and split; the
    test scores go to a file for the all-models ROC plot."""
    settings = load_settings()
    with stage_run(settings, settings.compare_experiment, spec, parent_run_id=parent,
                   tags={"flowae.stage": "compare", "flowae.compare_model": spec}) as active:
        log_job(job_for(spec, job))
        result = run_model(spec, job, on_epoch=epoch_logger(), progress=interactive())
        log_data(result.fit)  # the training and test files, as params and as datasets
        log_training(result.fit.train, result.fit.data)
        log_calibration(result.fit.detector, result.fit.calibration_scores)
        log_evaluation(result.scored, result.evaluation, result.fit.detector)
        at_fpr = result.recall_at_other_day_fpr()
        if at_fpr:
            mlflow.log_metrics({f"test_recall_at_1pct_fpr_other_day{'.' + _key(k) if k else ''}": v
                                for k, v in at_fpr.items() if np.isfinite(v)})
            mlflow.set_tag("flowae.other_day_benign_files", ", ".join(result.other_day_files))
        set_description(key_figures(spec, result.evaluation, [f.name for f in result.fit.training_files],
                                    [f.name for f in result.fit.files]))
        link = run_link(settings, active.info.experiment_id, active.info.run_id)
    print(f"{spec}: test AUROC {result.evaluation.auroc:.4f}; MLflow run {link}")
    scores = Path(work) / f"{spec}.npz"
    scores.parent.mkdir(parents=True, exist_ok=True)
    np.savez(scores, scores=result.scored.scores, attack=result.scored.labels != BENIGN)
    return ModelRun(row=result.row(), scores=scores, other_day_files=tuple(result.other_day_files),
                    run_id=active.info.run_id, link=link)


def _key(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label).strip("_")


def _flow_run_name() -> str:
    """``compare all on monday, ddos``: what the Prefect run does, not a random name."""
    job = flow_job(CompareJob)
    if job is None:
        return "compare"
    return f"compare {job.models} on {inputs_label(job.inputs)}"


#: the leaderboard's columns in the runs table, ranking metric first
BOARD_COLUMNS = ["test_auroc", "test_recall_at_1pct_fpr_other_day", "test_auprc", "test_f1", "test_fpr"]


@flow(name="compare", log_prints=True, flow_run_name=_flow_run_name)
def compare_flow(job: CompareJob) -> dict:
    settings = load_settings()
    specs = resolve_models(job.models)
    parent = new_run(settings, settings.compare_experiment, f"compare {len(specs)} models",
                     tags={"flowae.command": "compare"})
    ingest_flow(list(job.inputs), str(job.train.data))
    with workspace(settings.work_dir, parent) as work:
        results = [compare_model_task(spec, job.train, parent, str(work)) for spec in specs]
        curves = {}
        for r in results:  # the test scores each sibling left for the all-models ROC
            saved = np.load(r.scores)
            curves[r.row["model"]] = (saved["scores"], saved["attack"])
    board = leaderboard([r.row for r in results])
    markdown = leaderboard_markdown(board) + "\n\n" + other_day_note(board, list(results[0].other_day_files) if results else [])
    with stage_run(settings, settings.compare_experiment, "compare", run_id=parent), \
            tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "leaderboard.csv"
        board.to_csv(csv, index=False)
        mlflow.log_artifact(str(csv), "leaderboard")
        mlflow.log_text(markdown, "leaderboard/leaderboard.md")
        mlflow.log_figure(plots.leaderboard_figure(curves), "plots/roc_all_models.png")
        best = board.iloc[0]
        mlflow.log_metrics({"best_auroc": float(best["auroc"])})
        mlflow.log_params({"models": ", ".join(specs), "inputs": ", ".join(Path(i).name for i in job.inputs)[:6000]})
        mlflow.set_tag("flowae.best_model", str(best["model"]))
        set_description(f"Best: **{best['model']}** (test AUROC {float(best['auroc']):.4f}); "
                        f"every model on the same data and split, best first.\n\n{markdown}")
    experiment_id = ensure_experiment(settings, settings.compare_experiment)
    link = children_view(settings, experiment_id, parent, BOARD_COLUMNS[0], BOARD_COLUMNS[1:])
    create_markdown_artifact(key="leaderboard", markdown=f"{markdown}\n\n[MLflow: the models side by side]({link})",
                             description="compare: every model")
    create_table_artifact(board.fillna("n/a").to_dict(orient="records"), key="leaderboard-table")
    print(f"leaderboard: best {best['model']} (test AUROC {float(best['auroc']):.4f}); MLflow {link}")
    best_link = next(r.link for r in results if r.row["model"] == best["model"])
    return {"parent_run_id": parent, "leaderboard": markdown, "best": str(best["model"]),
            "best_link": best_link, "link": link, "parent_link": run_link(settings, experiment_id, parent)}
