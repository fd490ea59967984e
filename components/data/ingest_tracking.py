"""The MLflow record of one ingest: lineage (inputs + sha256), row/null/inf counts, GX reports."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow

from components.data.ingest import FileReport, IngestConfig
from components.settings import Settings
from components.tracking import ensure_experiment, file_dataset

MAX_TAG_CHARS = 5000  # MLflow stores tag values up to 8,000 characters; leave room


def log_ingest_run(settings: Settings, cfg: IngestConfig, reports: list[FileReport],
                   manifest_path: Path, docs_index: Path | None, order: dict | None = None) -> str:
    """One run in the data experiment: lineage (inputs + sha256), counts, capture order (tags
    ``flowae.file_order``, a JSON list, ``flowae.file_order_method``, ``flowae.file_order_guessed``),
    GX reports."""
    experiment_id = ensure_experiment(settings, settings.data_experiment)
    with mlflow.start_run(experiment_id=experiment_id, run_name="ingest") as run:
        mlflow.log_params({"files": len(reports), "invalid_values": cfg.invalid_values,
                           "out": str(Path(cfg.out).absolute())})
        if order is not None:
            mlflow.set_tags({"flowae.file_order": _order_tag(order["files"]),
                             "flowae.file_order_method": order["method"],
                             "flowae.file_order_guessed": str(order["guessed"]).lower()})
        for r in reports:
            if r.sha256 is None:
                continue
            mlflow.log_input(file_dataset(Path(r.source), r.sha256, name=r.name),
                             context="ingest",
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
            written = r.curated or r.quarantine
            report_json = cfg.validation_dir / f"{Path(written).stem}.json" if written else None
            if report_json is not None and report_json.is_file():
                mlflow.log_artifact(str(report_json), artifact_path="validation")
        if docs_index is not None:
            mlflow.log_artifacts(str(docs_index.parent), artifact_path="data_docs")
        mlflow.log_dict(_counts_table(reports), "ingest/column_counts.json")
        return run.info.run_id


def _counts_table(reports: list[FileReport]) -> dict[str, Any]:
    return {r.name: {"null": r.null_counts, "inf": r.inf_counts} for r in reports}


def _order_tag(files: list[str], limit: int = MAX_TAG_CHARS) -> str:
    """The file order as a JSON list, shortened to fit an MLflow tag (the manifest has it whole)."""
    kept = list(files)
    text = json.dumps(kept)
    while len(text) > limit and kept:
        kept.pop()
        text = json.dumps([*kept, f"... {len(files) - len(kept)} more (see manifest.json)"])
    return text
