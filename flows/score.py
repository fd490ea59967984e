"""``flowae score``: batch-score traffic logs with a registered model, mapped over files and over
the row groups of big parquet files, on the local task runner or a Dask cluster.

Outputs (DESIGN.md): ``OUT/<stem>.scored.parquet`` per input and ``OUT/summary.json``; a file
that cannot be scored gets ``OUT/quarantine/<stem>.json`` with its reason while the others are
scored. The night's report goes to a Prefect markdown artifact and to an MLflow run in
``flowae-scoring`` tagged with the model version, with its plots. The model alias is resolved
once, so every file of a night is scored by the same version. A big parquet file is scored in
parts (each reads the ``T - 1`` flows its windows need on either side, so the scores equal a
single pass) that are then joined in order.
"""
from __future__ import annotations

import shutil
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

import mlflow
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict

from components.data.ingest import plan_outputs
from components.data.inputs import PARQUET_SUFFIXES, InputFile
from components.data.outputs import remove_stale_temp_files, write_json_atomic
from components.detect import plots
from components.detect.inbox import Ledger, file_key
from components.detect.night_report import FileStats, markdown, missing_line
from components.detect.packaging import load_detector
from components.detect.registry import client as registry_client
from components.detect.scoring import FileResult, merge_parts, score_file, score_part, scored_name
from components.detect.serving import parquet_row_groups
from components.learn.training import resolve_device
from components.settings import load_settings
from components.tracking import ensure_experiment, run_link, stage_run
from flows.retries import retry_on_io_error


class ScoreJob(BaseModel):
    model_config = ConfigDict(frozen=True)

    inputs: tuple[str, ...]
    out: Path
    model_uri: str = "models:/flowae@champion"
    device: str = "auto"
    batch_rows: int | None = None
    progress: bool = False
    ledger: Path | None = None  # the inbox ledger to record each scored file in (score-nightly)
    runner: Literal["local", "dask"] = "local"
    address: str | None = None  # the Dask scheduler, tcp://HOST:PORT (runner dask)
    part_rows: int = 2_000_000  # parquet files with more rows are scored in parts of about this many


def resolve_model(model_uri: str) -> tuple[str, str]:
    """(a URI pinned to one version, the version's label): ``@champion`` is read once per night."""
    settings = load_settings()
    if model_uri.startswith("models:/") and "@" in model_uri:
        name, alias = model_uri.removeprefix("models:/").split("@", 1)
        version = registry_client(settings).get_model_version_by_alias(name, alias)
        return f"models:/{name}/{version.version}", str(version.version)
    if model_uri.startswith("models:/"):
        return model_uri, model_uri.rsplit("/", 1)[-1]
    return model_uri, model_uri


@lru_cache(maxsize=4)
def _detector(pinned_uri: str):
    """One load per process and model version (Dask workers reuse it across files and parts)."""
    return load_detector(pinned_uri)


def _finish(result: FileResult, path: str, stem: str, out: str, version: str, ledger: str | None,
            key: str | None) -> FileResult:
    """Quarantine note for a failed file; the ledger entry once the output is committed."""
    note = Path(out) / "quarantine" / f"{stem}.json"
    if result.status != "ok":
        write_json_atomic(note, {"source": result.source, "status": result.status, "error": result.error})
    else:
        note.unlink(missing_ok=True)
    if ledger and key is not None:  # only now: a crash before this line scores the file again
        Ledger(Path(ledger)).record(key, {"source": result.source, "status": result.status,
                                          "output": result.output, "error": result.error,
                                          "model_version": version})
    return result


@task(name="score-file", retries=2, retry_delay_seconds=1, retry_condition_fn=retry_on_io_error,
      task_run_name="score-{stem}")
def score_file_task(path: str, stem: str, out: str, pinned_uri: str, version: str, device: str,
                    batch_rows: int | None = None, progress: bool = False,
                    ledger: str | None = None, member: str | None = None) -> FileResult:
    """Score one log (``member`` of the zip archive ``path``, when given)."""
    key = file_key(Path(path)) if ledger and Path(path).exists() else None
    bar = _Bar(Path(path)) if progress else None
    try:
        result = score_file(_detector(pinned_uri), InputFile(Path(path), member), Path(out), stem, version,
                            device=str(resolve_device(device)), on_progress=bar.update if bar else None,
                            batch_rows=batch_rows, max_missing_share=load_settings().max_missing_feature_share)
    finally:
        if bar is not None:
            bar.close()
    return _finish(result, path, stem, out, version, ledger, key)


@task(name="score-part", retries=2, retry_delay_seconds=1, retry_condition_fn=retry_on_io_error,
      task_run_name="score-{stem}-rows-{start}")
def score_part_task(path: str, stem: str, part: str, start: int, stop: int, n_rows: int, pinned_uri: str,
                    version: str, device: str) -> FileResult:
    return score_part(_detector(pinned_uri), Path(path), Path(part), start, stop, n_rows, version,
                      device=str(resolve_device(device)),
                      max_missing_share=load_settings().max_missing_feature_share)


@task(name="join-parts", task_run_name="join-{stem}")
def join_parts_task(path: str, stem: str, out: str, parts: list[FileResult], version: str,
                    ledger: str | None = None, key: str | None = None) -> FileResult:
    failed = [p for p in parts if p.status != "ok"]
    if failed:
        result = FileResult(path, "failed", failed[0].error)
    else:
        written = merge_parts([Path(p.output) for p in parts], Path(out) / scored_name(stem))
        stats = parts[0].stats
        for p in parts[1:]:
            stats.merge(p.stats)
        result = FileResult(path, "ok", None, str(written), stats, sum(p.seconds for p in parts))
    shutil.rmtree(Path(out) / ".parts" / stem, ignore_errors=True)
    return _finish(result, path, stem, out, version, ledger, key)


class _Bar:
    """A tqdm bar in bytes with rows/s (files over 32 MB)."""

    def __init__(self, path: Path) -> None:
        from tqdm import tqdm

        size = path.stat().st_size if path.exists() else 0
        self.tqdm = tqdm(total=size, unit="B", unit_scale=True, desc=path.name, file=sys.stderr,
                         leave=False, disable=size < (32 << 20))

    def update(self, done: int, total: int, rows: int) -> None:
        self.tqdm.update(max(0, done - self.tqdm.n))
        elapsed = self.tqdm.format_dict.get("elapsed") or 1e-9
        self.tqdm.set_postfix(rows=rows, rows_s=f"{rows / elapsed:,.0f}", refresh=False)

    def close(self) -> None:
        self.tqdm.close()


def split_parts(path: Path, part_rows: int) -> list[tuple[int, int]] | None:
    """Row ranges of whole row groups, about ``part_rows`` each, for a big parquet file (else None)."""
    if path.suffix.lower() not in PARQUET_SUFFIXES or not path.is_file():
        return None
    try:
        sizes = parquet_row_groups(path)
    except Exception:  # noqa: BLE001 - not readable as parquet: the whole-file task says why
        return None
    if sum(sizes) <= part_rows or len(sizes) < 2:
        return None
    parts, start, rows = [], 0, 0
    for size in sizes:
        rows += size
        if rows >= part_rows:
            parts.append((start, start + rows))
            start, rows = start + rows, 0
    if rows:
        parts.append((start, start + rows))
    return parts if len(parts) > 1 else None


def task_runner(job: ScoreJob):
    if job.runner == "dask":
        from prefect_dask import DaskTaskRunner

        if not job.address:
            raise ValueError("--runner dask needs --address tcp://HOST:PORT of a Dask scheduler")
        return DaskTaskRunner(address=job.address)
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=1)  # one file at a time: memory stays bounded


def score(job: ScoreJob) -> dict:
    """Run :func:`score_flow` on the task runner the job asks for."""
    return score_flow.with_options(task_runner=task_runner(job))(job)


@flow(name="score", log_prints=True)
def score_flow(job: ScoreJob) -> dict:
    """Score every input; summarise the night; exit status is the caller's (any file failed)."""
    settings = load_settings()
    pinned, version = resolve_model(job.model_uri)
    detector = _detector(pinned)
    remove_stale_temp_files([Path(job.out), Path(job.out) / "quarantine"])  # a killed run's leftovers
    planned, notes = plan_outputs(list(job.inputs))
    ledger = str(job.ledger) if job.ledger else None
    device = job.device
    pending = []
    for item, stem in planned:
        path = Path(item.path)
        parts = split_parts(path, job.part_rows) if item.member is None and not item.gzipped else None
        if parts is None:
            pending.append((item.source, score_file_task.submit(str(path), stem, str(job.out), pinned, version,
                                                                device, job.batch_rows, job.progress, ledger,
                                                                item.member)))
            continue
        n_rows = parts[-1][1]
        key = file_key(path) if ledger else None
        futures = [score_part_task.submit(str(path), stem, str(job.out / ".parts" / stem / f"{i:05d}.parquet"),
                                          a, b, n_rows, pinned, version, device)
                   for i, (a, b) in enumerate(parts)]
        pending.append((item.source, join_parts_task.submit(str(path), stem, str(job.out), futures, version,
                                                            ledger, key)))
    results: list[FileResult] = []
    night = FileStats(detector)
    for source, future in pending:
        result = future.result(raise_on_failure=False)
        if isinstance(result, BaseException):
            result = FileResult(source, "failed", f"cannot read: {result}")
        results.append(result)
        if result.stats is not None:
            night.merge(result.stats)
            if result.stats.missing_columns:
                print(f"warning: {missing_line(result.summary())}")
    drift = night.drift_report()
    summary = {"model": f"{detector.name} (version {version})", "model_uri": pinned, "model_version": version,
               "threshold": detector.threshold, **night.summary(),
               "files": [r.summary() for r in results], "notes": notes,
               "drift": drift.to_dict() if drift is not None else None}
    summary_path = write_json_atomic(Path(job.out) / "summary.json", summary)
    run_id = _log_night(settings, summary, night, detector, version, summary_path)
    create_markdown_artifact(key="nightly-scoring", markdown=markdown(summary),
                             description=f"scoring with {detector.name} version {version}")
    experiment_id = ensure_experiment(settings, settings.scoring_experiment)
    return {**summary, "summary_path": str(summary_path), "mlflow_run_id": run_id,
            "link": run_link(settings, experiment_id, run_id)}


def _log_night(settings, summary: dict, night: FileStats, detector, version: str, summary_path: Path) -> str:
    with stage_run(settings, settings.scoring_experiment, f"score {len(summary['files'])} files",
                   tags={"flowae.model_version": version, "flowae.model": detector.name,
                         "flowae.stage": "score"}) as run:
        ok = [f for f in summary["files"] if f["status"] == "ok"]
        mlflow.log_metrics({"flows": summary["flows"], "anomalies": summary["anomalies"], "rate": summary["rate"],
                            "files_ok": len(ok), "files_failed": len(summary["files"]) - len(ok),
                            "rows_with_input_problems": summary["rows_with_input_problems"],
                            "files_missing_features": sum(bool(f.get("missing_features")) for f in ok)})
        gaps = {f["source"]: {"missing_columns": f["missing_columns"], "missing_features": f["missing_features"]}
                for f in ok if f.get("missing_columns")}
        if gaps:
            mlflow.log_dict(gaps, "scoring/missing_columns.json")
            mlflow.set_tag("flowae.missing_columns", "; ".join(
                f"{Path(k).name}: {', '.join(v['missing_columns'])}" for k, v in gaps.items())[:5000])
        mlflow.log_artifact(str(summary_path), "scoring")
        reference = detector.reference.get("score", {}).get("sample", [])
        mlflow.log_figure(plots.night_histogram(night.hist, reference, detector.threshold),
                          "plots/score_histogram.png")
        if summary["by_hour"]:
            mlflow.log_figure(plots.anomalies_over_time(summary["by_hour"]), "plots/anomalies_over_time.png")
        drift = summary.get("drift")
        if drift:
            mlflow.log_metrics({"drift.score_psi": drift["score_psi"],
                                "drift.features_shifted": len(drift["shifted_features"]),
                                **{f"drift.psi.{k}": v for k, v in drift["feature_psi"].items()}})
            mlflow.log_figure(plots.drift_bars(drift["feature_psi"]), "plots/feature_drift.png")
            if drift["warning"]:
                mlflow.set_tag("flowae.drift_warning", drift["warning"][:5000])
        return run.info.run_id


@flow(name="score-nightly", log_prints=True)
def score_nightly_flow(inbox: str | None = None, out: str | None = None,
                       model_uri: str = "models:/flowae@champion", settle_s: float | None = None) -> dict:
    """Score the inbox files that no earlier night scored, into ``OUT/<night>/``; the ledger in
    ``OUT/ledger.json`` records each file as soon as its output is committed."""
    settings = load_settings()
    inbox_dir = Path(inbox or settings.inbox_dir)
    out_dir = Path(out or settings.scored_dir)
    ledger = Ledger(out_dir)
    pending = ledger.pending(inbox_dir, settings.inbox_settle_s if settle_s is None else settle_s)
    if not pending:
        print(f"nothing new in {inbox_dir}")
        return {"files": [], "flows": 0, "anomalies": 0, "night": None}
    night = out_dir / time.strftime("%Y-%m-%dT%H%M%S")
    print(f"scoring {len(pending)} new files from {inbox_dir} into {night}")
    result = score_flow(ScoreJob(inputs=tuple(str(p) for p in pending), out=night, model_uri=model_uri,
                                 device=settings.device, ledger=out_dir))
    return {**result, "night": str(night)}
