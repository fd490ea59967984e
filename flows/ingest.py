"""Prefect flow for ingestion: one mapped task per input, retries on I/O errors, a table artifact,
and an MLflow run with dataset lineage, counts, capture order and the GX reports.

Thin by design: the work and its orchestration are ``components.data.ingest`` (``run_ingest``, the
same steps ``ingest_paths`` runs without Prefect); this module maps the per-file work as tasks
(retries, a bounded runner) and adds visibility (Prefect artifact, MLflow run). Data moves as paths.
"""
from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from components.data.ingest import FileReport, IngestConfig, ingest_file, run_ingest, unreadable
from components.data.ingest_tracking import log_ingest_run
from components.data.inputs import InputFile, display_name
from components.progress import FileBar
from components.report.tables import markdown_table
from components.settings import load_settings
from components.tracking import run_link_for, set_description
from flows.cli_support import inputs_label
from flows.retries import FileRunner, retry_on_io_error


@task(name="ingest-file", retries=2, retry_delay_seconds=1, retry_condition_fn=retry_on_io_error,
      task_run_name="ingest-{stem}")
def ingest_file_task(path: str, stem: str, out: str, invalid_values: str = "keep",
                     progress: bool = False, run_gx: bool = True, member: str | None = None) -> dict:
    """Ingest one input (a file, or ``member`` of the zip archive ``path``); returns its manifest
    entry (plain data, so Prefect can persist it)."""
    cfg = IngestConfig(out=Path(out), invalid_values=invalid_values, run_gx=run_gx)
    item = InputFile(Path(path), member)
    with FileBar(item.name, item.size, enabled=progress) as bar:  # no terminal: the CLI's per-file line
        report = ingest_file(item, cfg, stem, on_progress=bar.callback)
    return report.manifest_entry()


def _flow_run_name() -> str:
    from prefect.runtime import flow_run

    try:
        return f"ingest {inputs_label(flow_run.parameters['inputs'])}"
    except Exception:  # noqa: BLE001 - a run name is cosmetic
        return "ingest"


@flow(name="ingest", log_prints=True, task_runner=FileRunner(),  # bounded, whoever calls it
      flow_run_name=_flow_run_name)
def ingest_flow(inputs: list[str], out: str, progress: bool = False, log_to_mlflow: bool = True,
                run_gx: bool = True) -> dict:
    """Ingest raw files into ``out`` (curated/, quarantine/, manifest.json, validation/)."""
    settings = load_settings()
    cfg = IngestConfig(out=Path(out), invalid_values=settings.invalid_values, run_gx=run_gx)
    stems: list[str] = []
    reports: list[FileReport] = []  # in input order, for the MLflow run

    def each(planned: list[tuple[InputFile, str]]) -> list[FileReport]:
        futures = ingest_file_task.map(
            [str(item.path) for item, _ in planned], [s for _, s in planned], out,
            invalid_values=settings.invalid_values, progress=progress, run_gx=run_gx,
            member=[item.member for item, _ in planned])
        stems.extend(s for _, s in planned)
        for (item, stem), future in zip(planned, futures):
            result = future.result(raise_on_failure=False)
            # retries exhausted on an I/O error: the file fails, the others go on
            reports.append(unreadable(item, stem, cfg, result) if isinstance(result, BaseException)
                           else FileReport(**result))
        return reports

    result = run_ingest(inputs, cfg, each)
    manifest = result.manifest
    _publish_artifact(manifest["files"])
    run_id = (log_ingest_run(settings, cfg, reports, result.manifest_path, result.docs_index,
                             manifest["order"]) if log_to_mlflow else None)
    if run_id:
        _name_run(settings, run_id, stems, reports)
    return {"ok": result.ok, "manifest": str(result.manifest_path),
            "files": manifest["files"], "order": manifest["order"], "notes": manifest["notes"],
            "mlflow_run_id": run_id}


def _name_run(settings, run_id: str, stems: list[str], reports: list[FileReport]) -> None:
    """The ingest run named after its inputs (two ingests are told apart in the runs table), its
    figures as its description, and one line in the Prefect log with its link."""
    import mlflow

    client = mlflow.MlflowClient()
    client.update_run(run_id, name=f"ingest {inputs_label(stems)}"[:250])
    rows = [(display_name(r.source), r.status, f"{r.rows_in:,}", f"{r.rows_curated:,}", f"{r.rows_quarantined:,}")
            for r in reports]
    set_description(markdown_table(["file", "status", "rows in", "curated", "quarantined"], rows), run_id)
    curated = sum(r.rows_curated for r in reports)
    print(f"ingest: {sum(r.ok for r in reports)} of {len(reports)} files ok, {curated:,} rows curated; "
          f"MLflow {run_link_for(settings, run_id)}")


def _publish_artifact(entries: list[dict]) -> None:
    rows = [{"file": display_name(e["source"]), "status": e["status"],
             "rows_in": e["rows_in"], "rows_curated": e["rows_curated"],
             "rows_quarantined": e["rows_quarantined"], "gx_success": e["validation_success"],
             "error": e["error"] or ""} for e in entries]
    create_table_artifact(rows, key="ingest-validation-summary",
                          description="Per-file ingest and Great Expectations validation summary")
