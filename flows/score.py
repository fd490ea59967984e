"""``flowae score``: batch-score traffic logs with a registered model, one mapped task per file.

Outputs (DESIGN.md): ``OUT/<stem>.scored.parquet`` per input and ``OUT/summary.json``; a file
that cannot be scored gets ``OUT/quarantine/<stem>.json`` with its reason while the others are
scored. The night's report goes to a Prefect markdown artifact and to an MLflow run in
``flowae-scoring`` tagged with the model version, with its plots. The model alias is resolved
once, so every file of a night is scored by the same version.
"""
from __future__ import annotations

import sys
import time
from functools import lru_cache
from pathlib import Path

import mlflow
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict

from components.data.ingest import plan_outputs
from components.data.outputs import write_json_atomic
from components.detect import plots
from components.detect.inbox import Ledger, file_key
from components.detect.night_report import FileStats, markdown
from components.detect.packaging import load_detector
from components.detect.registry import client as registry_client
from components.detect.scoring import FileResult, score_file
from components.learn.training import resolve_device
from components.settings import load_settings
from components.tracking import ensure_experiment, run_link, stage_run


class ScoreJob(BaseModel):
    model_config = ConfigDict(frozen=True)

    inputs: tuple[str, ...]
    out: Path
    model_uri: str = "models:/flowae@champion"
    device: str = "auto"
    batch_rows: int | None = None
    progress: bool = False
    ledger: Path | None = None  # the inbox ledger to record each scored file in (score-nightly)


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
    """One load per process and model version (Dask workers reuse it across files)."""
    return load_detector(pinned_uri)


def _retry_on_io_error(task_obj, task_run, state) -> bool:
    try:
        state.result()
    except OSError:
        return True
    except Exception:  # noqa: BLE001 - any other failure is final
        return False
    return False


@task(name="score-file", retries=2, retry_delay_seconds=1, retry_condition_fn=_retry_on_io_error,
      task_run_name="score-{stem}")
def score_file_task(path: str, stem: str, out: str, pinned_uri: str, version: str, device: str,
                    batch_rows: int | None = None, progress: bool = False,
                    ledger: str | None = None) -> FileResult:
    key = file_key(Path(path)) if ledger and Path(path).exists() else None
    detector = _detector(pinned_uri)
    bar = _bar(Path(path)) if progress else None
    try:
        result = score_file(detector, Path(path), Path(out), stem, version, device=str(resolve_device(device)),
                            on_progress=bar.update if bar else None, batch_rows=batch_rows)
    finally:
        if bar is not None:
            bar.close()
    if result.status != "ok":
        write_json_atomic(Path(out) / "quarantine" / f"{stem}.json",
                          {"source": result.source, "status": result.status, "error": result.error})
    else:
        (Path(out) / "quarantine" / f"{stem}.json").unlink(missing_ok=True)
    if key is not None:  # only now: the output above is committed, so a crash before this rescores
        Ledger(Path(ledger)).record(key, {"source": result.source, "status": result.status,
                                          "output": result.output, "error": result.error,
                                          "model_version": version})
    return result


class _bar:
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


@flow(name="score", log_prints=True)
def score_flow(job: ScoreJob) -> dict:
    """Score every input; summarise the night; exit status is the caller's (any file failed)."""
    settings = load_settings()
    pinned, version = resolve_model(job.model_uri)
    detector = _detector(pinned)
    planned, notes = plan_outputs(list(job.inputs))
    futures = score_file_task.map([str(p) for p, _ in planned], [s for _, s in planned], str(job.out),
                                  pinned, version, job.device, job.batch_rows, job.progress,
                                  str(job.ledger) if job.ledger else None)
    results: list[FileResult] = []
    night = FileStats(detector)
    for (path, _), future in zip(planned, futures):
        result = future.result(raise_on_failure=False)
        if isinstance(result, BaseException):
            result = FileResult(str(path), "failed", f"cannot read: {result}")
        results.append(result)
        if result.stats is not None:
            night.merge(result.stats)
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
                            "rows_with_input_problems": summary["rows_with_input_problems"]})
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
