"""Prefect flow for ingestion: one mapped task per file, retries on I/O errors, a table artifact,
and an MLflow run with dataset lineage, counts and the GX reports.

Thin by design: the work is ``components.data.ingest``; this module adds orchestration (mapping,
retries), visibility (Prefect artifact, MLflow run) and nothing else. Data moves as paths.
"""
from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from components.data.ingest import (
    FileReport,
    IngestConfig,
    finish_validation,
    ingest_file,
    mark_failed,
    plan_outputs,
    write_manifest,
)
from components.data.ingest_tracking import log_ingest_run
from components.settings import load_settings


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
            report = FileReport(**result)
        reports.append(report)
    docs_index = finish_validation(cfg)
    manifest_path = write_manifest(reports, notes, cfg)
    _publish_artifact(reports)
    run_id = log_ingest_run(settings, cfg, reports, manifest_path, docs_index) if log_to_mlflow else None
    return {"ok": bool(reports) and all(r.ok for r in reports), "manifest": str(manifest_path),
            "files": [r.manifest_entry() for r in reports], "notes": notes, "mlflow_run_id": run_id}


def _publish_artifact(reports: list[FileReport]) -> None:
    rows = [{"file": Path(r.source).name, "status": r.status, "rows_in": r.rows_in,
             "rows_curated": r.rows_curated, "rows_quarantined": r.rows_quarantined,
             "gx_success": r.validation_success, "error": r.error or ""} for r in reports]
    create_table_artifact(rows, key="ingest-validation-summary",
                          description="Per-file ingest and Great Expectations validation summary")
