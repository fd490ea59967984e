"""Prefect flow for ingestion: one mapped task per file, retries on I/O errors, a table artifact,
and an MLflow run with dataset lineage, counts and the GX reports.

Thin by design: the work is ``components.ingest``; this module adds orchestration (mapping,
retries), visibility (Prefect artifact, MLflow run) and nothing else. Data moves as paths.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from components.ingest import (
    FileReport,
    IngestConfig,
    finish_validation,
    ingest_file,
    mark_failed,
    plan_outputs,
    write_manifest,
)
from components.settings import Settings, load_settings


def _retry_on_io_error(task_obj, task_run, state) -> bool:
    """Retry only transient I/O errors; a data problem would fail the same way again."""
    try:
        state.result()
    except OSError:
        return True
    except Exception:  # noqa: BLE001 - any other failure is final
        return False
    return False


def _progress_bar(path: Path):
    """A tqdm bar in bytes with rows/s, for files big enough to be worth watching."""
    from tqdm import tqdm

    size = path.stat().st_size if path.exists() else 0
    if size < (32 << 20):
        return None, None
    bar = tqdm(total=size, unit="B", unit_scale=True, desc=path.name, file=sys.stderr, leave=False)
    state = {"rows": 0}

    def update(done: int, total: int, rows: int) -> None:
        bar.update(max(0, done - bar.n))
        elapsed = bar.format_dict.get("elapsed") or 1e-9
        state["rows"] = rows
        bar.set_postfix(rows=rows, rows_s=f"{rows / elapsed:,.0f}", refresh=False)

    return update, bar


@task(name="ingest-file", retries=2, retry_delay_seconds=1, retry_condition_fn=_retry_on_io_error,
      task_run_name="ingest-{stem}")
def ingest_file_task(path: str, stem: str, out: str, invalid_values: str = "quarantine",
                     progress: bool = False, run_gx: bool = True) -> dict:
    """Ingest one file; returns its manifest entry (plain data, so Prefect can persist it)."""
    cfg = IngestConfig(out=Path(out), invalid_values=invalid_values, run_gx=run_gx)
    update, bar = _progress_bar(Path(path)) if progress else (None, None)
    try:
        report = ingest_file(Path(path), cfg, stem, on_progress=update)
    finally:
        if bar is not None:
            bar.close()
    return report.manifest_entry()


def _report_from(entry: dict) -> FileReport:
    return FileReport(**entry)


@flow(name="ingest", log_prints=True)
def ingest_flow(inputs: list[str], out: str, progress: bool = False, log_to_mlflow: bool = True,
                run_gx: bool = True) -> dict:
    """Ingest raw files into ``out`` (curated/, quarantine/, manifest.json, validation/)."""
    settings = load_settings()
    cfg = IngestConfig(out=Path(out), invalid_values=settings.invalid_values, run_gx=run_gx)
    planned, notes = plan_outputs(inputs)
    futures = ingest_file_task.map(
        [str(p) for p, _ in planned], [s for _, s in planned], out,
        invalid_values=settings.invalid_values, progress=progress, run_gx=run_gx)
    reports: list[FileReport] = []
    for (path, stem), future in zip(planned, futures):
        result = future.result(raise_on_failure=False)
        if isinstance(result, BaseException):  # retries exhausted on an I/O error
            report = FileReport(source=str(path.absolute()))
            mark_failed(report, cfg, stem, f"cannot read: {result}")
        else:
            report = _report_from(result)
        reports.append(report)
    docs_index = finish_validation(cfg)
    manifest_path = write_manifest(reports, notes, cfg)
    _publish_artifact(reports)
    run_id = _log_mlflow(settings, cfg, reports, manifest_path, docs_index) if log_to_mlflow else None
    return {"ok": bool(reports) and all(r.ok for r in reports), "manifest": str(manifest_path),
            "files": [r.manifest_entry() for r in reports], "notes": notes, "mlflow_run_id": run_id}


def _publish_artifact(reports: list[FileReport]) -> None:
    rows = [{"file": Path(r.source).name, "status": r.status, "rows_in": r.rows_in,
             "rows_curated": r.rows_curated, "rows_quarantined": r.rows_quarantined,
             "gx_success": r.validation_success, "error": r.error or ""} for r in reports]
    create_table_artifact(rows, key="ingest-validation-summary",
                          description="Per-file ingest and Great Expectations validation summary")


def _log_mlflow(settings: Settings, cfg: IngestConfig, reports: list[FileReport],
                manifest_path: Path, docs_index: Path | None) -> str:
    """One run in the data experiment: lineage (inputs + sha256), counts, GX reports."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    from components.tracking import ensure_experiment

    experiment_id = ensure_experiment(settings, settings.data_experiment)
    with mlflow.start_run(experiment_id=experiment_id, run_name="ingest") as run:
        mlflow.log_params({"files": len(reports), "invalid_values": cfg.invalid_values,
                           "out": str(Path(cfg.out).absolute())})
        for r in reports:
            if r.sha256 is None:
                continue
            dataset = MetaDataset(source=_local_source(resolve_dataset_source, r.source), name=Path(r.source).name,
                                  digest=r.sha256[:36])
            mlflow.log_input(dataset, context="ingest",
                             tags={"sha256": r.sha256, "status": r.status})
        metrics: dict[str, float] = {
            "files_ok": sum(r.ok for r in reports),
            "files_failed": sum(not r.ok for r in reports),
            "rows_in": sum(r.rows_in for r in reports),
            "rows_curated": sum(r.rows_curated for r in reports),
            "rows_quarantined": sum(r.rows_quarantined for r in reports),
        }
        for r in reports:
            for key, counts in (("null_count", r.null_counts), ("inf_count", r.inf_counts)):
                for column, value in counts.items():
                    metrics[f"{key}.{column}"] = metrics.get(f"{key}.{column}", 0) + value
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(manifest_path), artifact_path="ingest")
        for r in reports:
            report_json = cfg.validation_dir / f"{Path(r.curated).stem}.json" if r.curated else None
            if report_json is not None and report_json.is_file():
                mlflow.log_artifact(str(report_json), artifact_path="validation")
        if docs_index is not None:
            mlflow.log_artifacts(str(docs_index.parent), artifact_path="data_docs")
        mlflow.log_dict(_counts_table(reports), "ingest/column_counts.json")
        return run.info.run_id


def _local_source(resolve, path: str):
    """MLflow's local-file dataset source (its class is generated at import, so resolve it)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return resolve(path)


def _counts_table(reports: list[FileReport]) -> dict[str, Any]:
    return {Path(r.source).name: {"null": r.null_counts, "inf": r.inf_counts} for r in reports}


def ingest(inputs: list[str], out: str, **kwargs: Any) -> dict:
    """Plain-Python entry without Prefect (same outputs, no artifact or MLflow run)."""
    from components.ingest import ingest_paths

    settings = load_settings()
    result = ingest_paths(inputs, IngestConfig(out=Path(out), invalid_values=settings.invalid_values,
                                               **kwargs))
    return {"ok": result.ok, "manifest": str(result.manifest_path), "files": result.manifest["files"],
            "notes": result.manifest["notes"]}


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(ingest_flow(sys.argv[1:-1], sys.argv[-1]), indent=2))
