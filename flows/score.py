"""``flowae score`` and ``score-nightly`` as Prefect flows: batch-score traffic logs with a
registered model, mapped over files and over the parts of big parquet files, on the local task
runner or a Dask cluster. This module only wires tasks (mapping, retries, the Prefect artifact,
the MLflow run); the work is in ``components.serve``: ``scoring`` scores one file or part,
``nightly`` plans the job and its parts, books each file in the inbox ledger and builds the
summary, ``inbox`` is the ledger.

Outputs (DESIGN.md): ``OUT/<stem>.scored.parquet`` per input and ``OUT/summary.json``; a file
that cannot be scored gets ``OUT/quarantine/<stem>.json`` with its reason while the others are
scored (a bug says "internal error" and where its traceback went). Files are scored
``FLOWAE_MAX_PARALLEL_FILES`` at a time (default 1: memory stays bounded by one file). The
night's report goes to a Prefect markdown artifact and to an MLflow run in ``flowae-scoring``
tagged with the model version, with its plots. The model alias is resolved once, so every file
of a night is scored by the same version.

``score-nightly`` takes its work from the inbox ledger: it claims the new files in one
transaction, marks each done once its output is on disk, leaves a failure that may pass for the
next night, and ends *Failed* (after scoring everything else) when any file failed, so Prefect's
alerting sees it.
"""
from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import mlflow
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed

from components.data.inputs import InputFile
from components.data.outputs import remove_stale_temp_files
from components.jobs import ScoreJob
from components.learn.training import resolve_device
from components.locks import new_owner
from components.progress import FileBar
from components.report.night import FileStats, markdown, night_headline
from components.report.records import log_night
from components.serve import nightly
from components.serve.inbox import Ledger
from components.serve.packaging import load_detector
from components.serve.registry import pin_model
from components.serve.scoring import FileResult, internal_failure, score_file, score_part
from components.settings import load_settings
from components.tracking import ensure_experiment, run_link, stage_run
from flows.cli_support import inputs_label, write_error_log
from flows.retries import FileRunner, retry_on_io_error


@lru_cache(maxsize=4)
def _detector(pinned_uri: str):
    """One load per process and model version (Dask workers reuse it across files and parts)."""
    return load_detector(pinned_uri)


def _internal_error(source: str, exc: BaseException, out: str) -> FileResult:
    """A bug (or out of memory) fails this file, not the night; its traceback goes to OUT's error log."""
    return internal_failure(source, exc, write_error_log(Path(out), "score", exc))


def _record(result: FileResult, stem: str, out: str, version: str, ledger: str | None, key: int | None,
            owner: str | None) -> FileResult:
    return nightly.record_outcome(result, stem, out, version, ledger, key, owner, load_settings().max_attempts)


@task(name="score-file", retries=2, retry_delay_seconds=1, retry_condition_fn=retry_on_io_error,
      task_run_name="score-{stem}")
def score_file_task(path: str, stem: str, out: str, pinned_uri: str, version: str, device: str,
                    batch_rows: int | None = None, progress: bool = False,
                    ledger: str | None = None, member: str | None = None, key: int | None = None,
                    owner: str | None = None) -> FileResult:
    """Score one log (``member`` of the zip archive ``path``, when given)."""
    item = InputFile(Path(path), member)
    if not nightly.start_attempt(ledger, key, owner):
        return nightly.claim_lost(item.source)
    file = Path(path)
    try:
        with FileBar(file.name, lambda: file.stat().st_size if file.exists() else 0,
                     enabled=progress) as bar:  # no terminal: the per-file line instead
            result = score_file(_detector(pinned_uri), item, Path(out), stem, version,
                                device=str(resolve_device(device)), on_progress=bar.callback,
                                batch_rows=batch_rows, max_missing_share=load_settings().max_missing_feature_share)
    except Exception as exc:  # noqa: BLE001 - a bug fails this file, not the night
        result = _internal_error(item.source, exc, out)
    return _record(result, stem, out, version, ledger, key, owner)


@task(name="score-part", retries=2, retry_delay_seconds=1, retry_condition_fn=retry_on_io_error,
      task_run_name="score-{stem}-rows-{start}")
def score_part_task(path: str, stem: str, part: str, start: int, stop: int, n_rows: int, pinned_uri: str,
                    version: str, device: str, clock: str | None = None) -> FileResult:
    try:
        return score_part(_detector(pinned_uri), Path(path), Path(part), start, stop, n_rows, version,
                          device=str(resolve_device(device)),
                          max_missing_share=load_settings().max_missing_feature_share, clock=clock)
    except Exception as exc:  # noqa: BLE001 - a bug fails this file, not the night
        return _internal_error(str(path), exc, str(Path(part).parent.parent.parent))


@task(name="join-parts", task_run_name="join-{stem}")
def join_parts_task(path: str, stem: str, out: str, parts: list[FileResult], version: str,
                    ledger: str | None = None, key: int | None = None, owner: str | None = None) -> FileResult:
    try:
        result = nightly.join_parts(path, Path(out), stem, parts)
    except Exception as exc:  # noqa: BLE001 - a bug fails this file, not the night
        result = _internal_error(path, exc, out)
    nightly.remove_parts(Path(out), stem)
    return _record(result, stem, out, version, ledger, key, owner)


def task_runner(job: ScoreJob):
    if job.runner == "dask":
        from prefect_dask import DaskTaskRunner

        if not job.address:
            raise ValueError("--runner dask needs --address tcp://HOST:PORT of a Dask scheduler")
        return DaskTaskRunner(address=job.address)
    return FileRunner()  # FLOWAE_MAX_PARALLEL_FILES at a time (default 1): memory stays bounded


def run_score_flow(job: ScoreJob) -> dict:
    """Run :func:`score_flow` on the task runner the job asks for."""
    return score_flow.with_options(task_runner=task_runner(job))(job)


@flow(name="score", log_prints=True, task_runner=FileRunner())  # bounded also as a subflow
def score_flow(job: ScoreJob) -> dict:
    """Score every input; summarise the night; exit status is the caller's (any file failed)."""
    settings = load_settings()
    pinned, version = pin_model(settings, job.model_uri)
    detector = _detector(pinned)
    remove_stale_temp_files([Path(job.out), Path(job.out) / "quarantine"])  # a killed run's leftovers
    planned, notes = nightly.plan_job(job)
    ledger = str(job.ledger) if job.ledger else None
    owner = job.owner
    device = job.device
    pending = []
    for plan in planned:
        item, out, stem, key = plan
        parts = nightly.plan_parts(detector, plan, job.part_rows)
        if parts is None:
            pending.append((item.source, out, key, score_file_task.submit(
                str(item.path), stem, str(out), pinned, version, device, job.batch_rows, job.progress, ledger,
                item.member, key, owner)))
            continue
        if not nightly.start_attempt(ledger, key, owner):
            pending.append((item.source, out, None, nightly.claim_lost(item.source)))
            continue
        futures = [score_part_task.submit(str(item.path), stem, str(target), a, b, parts.n_rows, pinned, version,
                                          device, parts.clock)
                   for target, (a, b) in zip(parts.targets(), parts.ranges, strict=True)]
        pending.append((item.source, out, key, join_parts_task.submit(str(item.path), stem, str(out), futures,
                                                                      version, ledger, key, owner)))
    results: list[FileResult] = []
    for source, out, key, future in pending:
        result = future if isinstance(future, FileResult) else future.result(raise_on_failure=False)
        if isinstance(result, BaseException):  # the task itself failed (its retries spent)
            result = _internal_error(source, result, str(out))
            if ledger and key is not None:
                result = _record(result, "", str(out), version, ledger, key, owner)
        results.append(result)
    night, warnings = nightly.tally(detector, results)
    for line in warnings:
        print(line)
    summary = nightly.night_summary(detector, pinned, version, night, results, notes,
                                    settings.host_budget, settings.host_max_rate)
    summary_path = nightly.write_summary(Path(job.out), summary)
    run_id = _log_night(settings, summary, night, detector, version, summary_path, job)
    experiment_id = ensure_experiment(settings, settings.scoring_experiment)
    link = run_link(settings, experiment_id, run_id)
    where = f"MLflow run: [{run_id}]({link}) · outputs: `{Path(job.out).resolve()}` (summary.json, *.scored.parquet)"
    create_markdown_artifact(key="nightly-scoring", markdown=markdown(summary, where),
                             description=f"scoring with {detector.name} version {version}")
    print(f"scored {summary['flows']:,} flows: {night_headline(summary)}; MLflow: {link}")
    return {**summary, "summary_path": str(summary_path), "mlflow_run_id": run_id, "link": link}


def _log_night(settings, summary: dict, night: FileStats, detector, version: str, summary_path: Path,
               job: ScoreJob) -> str:
    with stage_run(settings, settings.scoring_experiment, f"score {inputs_label(list(job.inputs))}",
                   tags={"flowae.model_version": version, "flowae.model": detector.name,
                         "flowae.stage": "score"}) as run:
        mlflow.log_params({"inputs": ", ".join(Path(i).name for i in job.inputs)[:6000],
                           "input_count": len(job.inputs), "out": str(Path(job.out).resolve()),
                           "model_uri": summary["model_uri"], "model_version": version, "model": detector.name,
                           "threshold": detector.threshold, "host_budget": settings.host_budget,
                           "host_max_rate": settings.host_max_rate})
        log_night(summary, night, detector, summary_path)
        return run.info.run_id


@flow(name="score-nightly", log_prints=True, task_runner=FileRunner())
def score_nightly_flow(inbox: str | None = None, out: str | None = None,
                       model_uri: str = "models:/flowae@champion", settle_s: float | None = None):
    """Score the inbox items (files and zip members) that no earlier night scored, into
    ``OUT/<night>/``, with the ledger ``OUT/ledger.sqlite``. Ends Failed when any file failed."""
    settings = load_settings()
    inbox_dir = Path(inbox or settings.inbox_dir)
    out_dir = Path(out or settings.scored_dir)
    ledger = Ledger(out_dir)
    owner = new_owner()
    nightly.remove_killed_runs_temp_files(out_dir)
    claim = ledger.claim(inbox_dir, owner, time.strftime("%Y-%m-%dT%H%M%S"),
                         settings.inbox_settle_s if settle_s is None else settle_s,
                         settings.max_attempts, settings.claim_ttl_s)
    lost = nightly.quarantined_at_claim(ledger, claim)
    if not claim.items:
        print(f"nothing new in {inbox_dir}")
        return _night_state(nightly.nothing_scored(lost))
    print(f"scoring {len(claim.items)} new files from {inbox_dir} into {claim.night} (run {owner})")
    try:
        result = score_flow(nightly.night_job(claim, out_dir, model_uri, settings.device, owner))
    finally:
        ledger.release(owner)  # claims not reached (the night failed before them) are pending again
    return _night_state({**result, "files": result["files"] + lost, "night": str(claim.night)})


class NightFailed(Exception):
    """A night in which some file failed; ``summary`` is what the night returns otherwise."""

    def __init__(self, message: str, summary: dict | None = None) -> None:
        super().__init__(message, summary)
        self.message, self.summary = message, summary or {}

    def __str__(self) -> str:
        return self.message


def _night_state(result: dict):
    """The night's summary, or a Failed state carrying it (``NightFailed``) when any file failed,
    after everything else was scored: Prefect's alerting and ``run_deployment`` callers see it."""
    message = nightly.night_failure(result)
    if message is None:
        return result
    return Failed(message=message, data=NightFailed(message, result))
