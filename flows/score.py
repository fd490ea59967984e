"""``flowae score``: batch-score traffic logs with a registered model, mapped over files and over
the row groups of big parquet files, on the local task runner or a Dask cluster.

Outputs (DESIGN.md): ``OUT/<stem>.scored.parquet`` per input and ``OUT/summary.json``; a file
that cannot be scored gets ``OUT/quarantine/<stem>.json`` with its reason while the others are
scored (a bug says "internal error" and where its traceback went). Files are scored
``FLOWAE_MAX_PARALLEL_FILES`` at a time (default 1: memory stays bounded by one file). The night's report goes to a Prefect markdown artifact and to an MLflow run in
``flowae-scoring`` tagged with the model version, with its plots. The model alias is resolved
once, so every file of a night is scored by the same version. A big parquet file is scored in
parts (each reads the ``T - 1`` flows its windows need on either side, so the scores equal a
single pass, on the 12-hour clock decided once for the whole file) that are then joined in order.

``score-nightly`` takes its work from the inbox ledger (``components.serve.inbox``): it claims
the new files in one transaction, marks each done once its output is on disk, leaves a failure
that may pass for the next night, and ends *Failed* (after scoring everything else) when any
file failed, so Prefect's alerting sees it.
"""
from __future__ import annotations

import shutil
import time
from contextlib import suppress
from functools import lru_cache
from pathlib import Path

import mlflow
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed

from components.data.ingest import plan_outputs
from components.data.inputs import PARQUET_SUFFIXES, InputFile, display_name
from components.data.logs import parquet_clock, parquet_row_groups
from components.data.outputs import remove_stale_temp_files, safe_stem, write_json_atomic
from components.jobs import ScoreItem, ScoreJob
from components.learn.training import resolve_device
from components.locks import new_owner
from components.progress import FileBar
from components.report import plots
from components.report.night import (
    FileStats,
    markdown,
    missing_line,
    night_description,
    night_headline,
)
from components.serve.inbox import Ledger
from components.serve.packaging import load_detector
from components.serve.registry import client as registry_client
from components.serve.scoring import (
    FileResult,
    merge_parts,
    one_line_reason,
    score_file,
    score_part,
    scored_name,
)
from components.settings import load_settings
from components.tracking import ensure_experiment, run_link, set_description, stage_run
from flows.cli_support import inputs_label, write_error_log
from flows.retries import FileRunner, retry_on_io_error


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


def _finish(result: FileResult, stem: str, out: str, version: str, ledger: str | None,
            key: int | None, owner: str | None) -> FileResult:
    """Without a ledger: a quarantine note for a failed file. With one: the row says done (the
    output is already fsynced and renamed: a crash before this line scores the file again, into
    the same output), or records the failure, which the ledger retries on a later night or
    quarantines with its history."""
    if not ledger or key is None:
        note = Path(out) / "quarantine" / f"{stem}.json"
        if result.status != "ok":
            write_json_atomic(note, {"source": result.source, "status": result.status, "error": result.error})
        else:
            note.unlink(missing_ok=True)
        return result
    book = Ledger(Path(ledger))
    if result.status == "ok":
        book.done(key, owner or "", result.output or "", version)
        return result
    max_attempts = load_settings().max_attempts
    item = book.failed(key, owner or "", result.error or "failed", result.transient, max_attempts)
    if item.status == "quarantined":
        result.error = f"{result.error} (quarantined after {item.attempts} attempt(s): {book.note_path(item)})"
    elif item.status == "failed":
        result.error = f"{result.error} (attempt {item.attempts} of {max_attempts}; tried again next night)"
    return result


def internal_error(exc: BaseException, out: str) -> FileResult:
    """What a bug (or out of memory) in scoring a file says: its type and message, and where the
    traceback went; a later night may try the file again."""
    log = write_error_log(Path(out), "score", exc)
    return FileResult("", "failed", f"internal error: {type(exc).__name__}: {one_line_reason(exc)} (see {log})",
                      transient=True)


def _start(ledger: str | None, key: int | None, owner: str | None) -> bool:
    """Renew the claim and count the attempt; False when another run took the file over."""
    return not ledger or key is None or Ledger(Path(ledger)).start(key, owner or "")


def _claim_lost(source: str) -> FileResult:
    return FileResult(source, "failed", "claim lost: another run took this file over, it scores it")


@task(name="score-file", retries=2, retry_delay_seconds=1, retry_condition_fn=retry_on_io_error,
      task_run_name="score-{stem}")
def score_file_task(path: str, stem: str, out: str, pinned_uri: str, version: str, device: str,
                    batch_rows: int | None = None, progress: bool = False,
                    ledger: str | None = None, member: str | None = None, key: int | None = None,
                    owner: str | None = None) -> FileResult:
    """Score one log (``member`` of the zip archive ``path``, when given)."""
    item = InputFile(Path(path), member)
    if not _start(ledger, key, owner):
        return _claim_lost(item.source)
    file = Path(path)
    try:
        with FileBar(file.name, lambda: file.stat().st_size if file.exists() else 0,
                     enabled=progress) as bar:  # no terminal: the per-file line instead
            result = score_file(_detector(pinned_uri), item, Path(out), stem, version,
                                device=str(resolve_device(device)), on_progress=bar.callback,
                                batch_rows=batch_rows, max_missing_share=load_settings().max_missing_feature_share)
    except Exception as exc:  # noqa: BLE001 - a bug fails this file, not the night
        result = internal_error(exc, out)
        result.source = item.source
    return _finish(result, stem, out, version, ledger, key, owner)


@task(name="score-part", retries=2, retry_delay_seconds=1, retry_condition_fn=retry_on_io_error,
      task_run_name="score-{stem}-rows-{start}")
def score_part_task(path: str, stem: str, part: str, start: int, stop: int, n_rows: int, pinned_uri: str,
                    version: str, device: str, clock: str | None = None) -> FileResult:
    try:
        return score_part(_detector(pinned_uri), Path(path), Path(part), start, stop, n_rows, version,
                          device=str(resolve_device(device)),
                          max_missing_share=load_settings().max_missing_feature_share, clock=clock)
    except Exception as exc:  # noqa: BLE001 - a bug fails this file, not the night
        result = internal_error(exc, str(Path(part).parent.parent.parent))
        result.source = str(path)
        return result


@task(name="join-parts", task_run_name="join-{stem}")
def join_parts_task(path: str, stem: str, out: str, parts: list[FileResult], version: str,
                    ledger: str | None = None, key: int | None = None, owner: str | None = None) -> FileResult:
    failed = [p for p in parts if p.status != "ok"]
    try:
        if failed:
            result = FileResult(path, "failed", failed[0].error, transient=failed[0].transient)
        else:
            written = merge_parts([Path(p.output) for p in parts], Path(out) / scored_name(stem))
            stats = parts[0].stats
            for p in parts[1:]:
                stats.merge(p.stats)
            result = FileResult(path, "ok", None, str(written), stats, sum(p.seconds for p in parts))
    except Exception as exc:  # noqa: BLE001 - a bug fails this file, not the night
        result = internal_error(exc, out)
        result.source = path
    remove_parts(Path(out), stem)
    return _finish(result, stem, out, version, ledger, key, owner)


def parts_dir(out: Path, stem: str) -> Path:
    """``OUT/.parts/<stem>``, refused unless it is a folder strictly inside ``OUT/.parts``."""
    root = (Path(out) / ".parts").resolve()
    folder = (root / stem).resolve()
    if folder.parent != root:
        raise ValueError(f"{stem!r}: not a safe output name")
    return folder


def remove_parts(out: Path, stem: str) -> None:
    shutil.rmtree(parts_dir(out, stem), ignore_errors=True)
    with suppress(OSError):
        (Path(out) / ".parts").rmdir()  # only when no other file's parts are left


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
    return FileRunner()  # FLOWAE_MAX_PARALLEL_FILES at a time (default 1): memory stays bounded


def score(job: ScoreJob) -> dict:
    """Run :func:`score_flow` on the task runner the job asks for."""
    return score_flow.with_options(task_runner=task_runner(job))(job)


def plan_job(job: ScoreJob) -> tuple[list[tuple[InputFile, Path, str, int | None]], list[str]]:
    """(input, output folder, output stem, ledger row) for every input; stems are safe names
    (``...parquet`` has the stem ``..``) and unique in their folder."""
    if job.items:
        return [(InputFile(Path(i.path), i.member), Path(i.target).parent,
                 Path(i.target).name.removesuffix(".scored.parquet"), i.key) for i in job.items], []
    planned, notes = plan_outputs(list(job.inputs))
    used: set[str] = set()
    out = []
    for item, stem in planned:
        safe = safe_stem(stem)
        if safe in used:
            notes.append(f"{item.display}: written as {safe}__{len(out)} (same output name as another input)")
            safe = f"{safe}__{len(out)}"
        used.add(safe)
        out.append((item, Path(job.out), safe, None))
    return out, notes


@flow(name="score", log_prints=True, task_runner=FileRunner())  # bounded also as a subflow
def score_flow(job: ScoreJob) -> dict:
    """Score every input; summarise the night; exit status is the caller's (any file failed)."""
    settings = load_settings()
    pinned, version = resolve_model(job.model_uri)
    detector = _detector(pinned)
    remove_stale_temp_files([Path(job.out), Path(job.out) / "quarantine"])  # a killed run's leftovers
    planned, notes = plan_job(job)
    ledger = str(job.ledger) if job.ledger else None
    owner = job.owner
    device = job.device
    pending = []
    for item, out, stem, key in planned:
        path = Path(item.path)
        whole = item.member is not None or item.gzipped or detector.host_windows  # host windows span the file
        parts = split_parts(path, job.part_rows) if not whole else None
        clock = "unknown"
        if parts is not None:
            try:
                clock = parquet_clock(path)  # decided once for the whole file, handed to every part
            except Exception:  # noqa: BLE001 - unreadable after all: scored whole, which says why
                parts = None
        if parts is None:
            pending.append((item.source, out, key, score_file_task.submit(
                str(path), stem, str(out), pinned, version, device, job.batch_rows, job.progress, ledger,
                item.member, key, owner)))
            continue
        if not _start(ledger, key, owner):
            pending.append((item.source, out, None, _claim_lost(item.source)))
            continue
        n_rows = parts[-1][1]
        folder = parts_dir(out, stem)
        futures = [score_part_task.submit(str(path), stem, str(folder / f"{i:05d}.parquet"),
                                          a, b, n_rows, pinned, version, device, clock)
                   for i, (a, b) in enumerate(parts)]
        pending.append((item.source, out, key, join_parts_task.submit(str(path), stem, str(out), futures, version,
                                                                      ledger, key, owner)))
    results: list[FileResult] = []
    night = FileStats(detector)
    for source, out, key, future in pending:
        result = future if isinstance(future, FileResult) else future.result(raise_on_failure=False)
        if isinstance(result, BaseException):  # the task itself failed (its retries spent)
            result = internal_error(result, str(out))
            result.source = source
            if ledger and key is not None:
                result = _finish(result, "", str(out), version, ledger, key, owner)
        results.append(result)
        if result.stats is not None:
            night.merge(result.stats)
            if result.stats.missing_columns:
                print(f"warning: {missing_line(result.summary())}")
    drift = night.drift_report()
    entities = night.entity_report(settings.host_budget, settings.host_max_rate)
    summary = {"entities": entities,
               "model": f"{detector.name} (version {version})", "model_uri": pinned, "model_version": version,
               "threshold": detector.threshold, **night.summary(),
               "files": [r.summary() for r in results], "notes": notes,
               "drift": drift.to_dict() if drift is not None else None}
    summary_path = write_json_atomic(Path(job.out) / "summary.json", summary)
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
        set_description(night_description(summary))
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
        entities = summary.get("entities") or {}
        if entities.get("available"):
            mlflow.log_metrics({"hosts_flagged": entities["hosts"]["flagged"], "hosts_ranked": entities["hosts"]["ranked"],
                                "pairs_flagged": entities["pairs"]["flagged"]})
            mlflow.log_dict(entities, "scoring/entities.json")
            mlflow.set_tag("flowae.hosts_flagged", ", ".join(
                r["entity"] for r in entities["hosts"]["table"] if r["flagged"])[:5000] or "none")
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
    _remove_killed_runs_temp_files(out_dir)
    claim = ledger.claim(inbox_dir, owner, time.strftime("%Y-%m-%dT%H%M%S"),
                         settings.inbox_settle_s if settle_s is None else settle_s,
                         settings.max_attempts, settings.claim_ttl_s)
    lost = [{"source": i.source, "status": "failed", "error": f"{i.last_error} (quarantined after {i.attempts} "
             f"attempt(s): {ledger.note_path(i)})", "output": None} for i in claim.quarantined]
    if not claim.items:
        print(f"nothing new in {inbox_dir}")
        result = {"files": lost, "flows": 0, "anomalies": 0, "night": None}
        return _night_state(result)
    print(f"scoring {len(claim.items)} new files from {inbox_dir} into {claim.night} (run {owner})")
    items = tuple(ScoreItem(path=i.path, member=i.member or None, target=Path(i.output), key=i.id)
                  for i in claim.items)
    try:
        result = score_flow(ScoreJob(inputs=tuple(i.source for i in claim.items), items=items, out=claim.night,
                                     model_uri=model_uri, device=settings.device, ledger=out_dir, owner=owner))
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
    failed = [f for f in result["files"] if f["status"] != "ok"]
    if not failed:
        return result
    names = ", ".join(display_name(f["source"]) for f in failed[:5])
    message = f"{len(failed)} of {len(result['files'])} files failed: {names}"
    return Failed(message=message, data=NightFailed(message, result))


def _remove_killed_runs_temp_files(out_dir: Path) -> None:
    """Temp files of killed runs, in the ledger's folder and in every night's folders."""
    folders = [out_dir, out_dir / "quarantine"]
    if out_dir.is_dir():
        for night in out_dir.iterdir():
            if night.is_dir() and not night.name.startswith("."):
                folders += [night, night / "quarantine"]
                parts = night / ".parts"
                if parts.is_dir():
                    folders += [p for p in parts.iterdir() if p.is_dir()]
    remove_stale_temp_files(folders)
