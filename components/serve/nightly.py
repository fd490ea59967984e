"""A batch-scoring night without Prefect: where each input's output goes, which big parquet files
are scored in parts, what the inbox ledger records when a file starts and ends, and the night's
summary (``summary.json``). ``flows/score.py`` maps these over Prefect tasks.

**Parts.** A big parquet file is scored in parts of whole row groups (each part reads the
``T - 1`` flows its windows need on either side, on the 12-hour clock decided once for the whole
file, so the scores equal a single pass) under ``OUT/.parts/<stem>``, then joined in order.

**Ledger** (``score-nightly``, ``components.serve.inbox``): a file's attempt is counted when it
starts, and only by the run that holds its claim; its row says *done* once the output is fsynced
and renamed into place, else records the failure, which a later night tries again or quarantines.
Without a ledger (``flowae score``) a failed file gets ``OUT/quarantine/<stem>.json`` instead.
"""
from __future__ import annotations

import shutil
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple

from components.data.ingest import plan_outputs
from components.data.inputs import PARQUET_SUFFIXES, InputFile, display_name
from components.data.logs import parquet_clock, parquet_row_groups
from components.data.outputs import remove_stale_temp_files, safe_stem, write_json_atomic
from components.detect.detector import Detector
from components.jobs import ScoreItem, ScoreJob
from components.report.night import FileStats, missing_line
from components.serve.inbox import Claim, Ledger
from components.serve.scoring import FileResult, merge_parts, scored_name

SUMMARY = "summary.json"


# --- the plan --------------------------------------------------------------------------------------

class Planned(NamedTuple):
    """One input of a scoring job: its output folder and stem, and its ledger row (if any)."""

    item: InputFile
    out: Path
    stem: str
    key: int | None


def plan_job(job: ScoreJob) -> tuple[list[Planned], list[str]]:
    """Every input planned, and notes on renamed outputs; stems are safe names (``...parquet``
    has the stem ``..``) and unique in their folder. A night's items keep the outputs the ledger
    fixed for them."""
    if job.items:
        return [Planned(InputFile(Path(i.path), i.member), Path(i.target).parent,
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
        out.append(Planned(item, Path(job.out), safe, None))
    return out, notes


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


class Parts(NamedTuple):
    """A file scored in parts: its row ranges and the clock decided once for all of them."""

    ranges: list[tuple[int, int]]
    clock: str
    out: Path
    stem: str

    @property
    def n_rows(self) -> int:
        return self.ranges[-1][1]

    def targets(self) -> list[Path]:
        """Where each part's scored rows go, in order."""
        folder = parts_dir(self.out, self.stem)
        return [folder / f"{i:05d}.parquet" for i in range(len(self.ranges))]


def plan_parts(detector: Detector, planned: Planned, part_rows: int) -> Parts | None:
    """How to cut a big parquet file into parts, or None to score the input whole: a zip member,
    a gzipped file, a small or unreadable file, or any file for a host-window model (a host's
    windows span the file)."""
    item = planned.item
    if item.member is not None or item.gzipped or detector.host_windows:
        return None
    ranges = split_parts(Path(item.path), part_rows)
    if ranges is None:
        return None
    try:
        clock = parquet_clock(Path(item.path))  # decided once for the whole file, handed to every part
    except Exception:  # noqa: BLE001 - unreadable after all: scored whole, which says why
        return None
    return Parts(ranges, clock, planned.out, planned.stem)


def join_parts(source: str, out: Path, stem: str, parts: list[FileResult]) -> FileResult:
    """A file's result from its parts' (in order): the first part's failure, or the parts merged
    into ``OUT/<stem>.scored.parquet`` with their counts added up."""
    failed = [p for p in parts if p.status != "ok"]
    if failed:
        return FileResult(source, "failed", failed[0].error, transient=failed[0].transient)
    written = merge_parts([Path(p.output) for p in parts], Path(out) / scored_name(stem))
    stats = parts[0].stats
    for p in parts[1:]:
        stats.merge(p.stats)
    return FileResult(source, "ok", None, str(written), stats, sum(p.seconds for p in parts))


# --- the ledger ------------------------------------------------------------------------------------

def start_attempt(ledger: str | None, key: int | None, owner: str | None) -> bool:
    """Renew the claim and count the attempt; False when another run took the file over (always
    True without a ledger)."""
    return not ledger or key is None or Ledger(Path(ledger)).start(key, owner or "")


def claim_lost(source: str) -> FileResult:
    return FileResult(source, "failed", "claim lost: another run took this file over, it scores it")


def record_outcome(result: FileResult, stem: str, out: str, version: str, ledger: str | None,
                   key: int | None, owner: str | None, max_attempts: int) -> FileResult:
    """Without a ledger: a quarantine note for a failed file (none for a scored one). With one:
    the row says done (the output is already fsynced and renamed: a crash before this line scores
    the file again, into the same output), or records the failure, which the ledger retries on a
    later night or quarantines with its history; the result's error then says which."""
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
    item = book.failed(key, owner or "", result.error or "failed", result.transient, max_attempts)
    if item.status == "quarantined":
        result.error = f"{result.error} (quarantined after {item.attempts} attempt(s): {book.note_path(item)})"
    elif item.status == "failed":
        result.error = f"{result.error} (attempt {item.attempts} of {max_attempts}; tried again next night)"
    return result


def night_job(claim: Claim, out_dir: Path, model_uri: str, device: str, owner: str) -> ScoreJob:
    """The scoring job for what a night claimed: each item's output fixed by its ledger row."""
    items = tuple(ScoreItem(path=i.path, member=i.member or None, target=Path(i.output), key=i.id)
                  for i in claim.items)
    return ScoreJob(inputs=tuple(i.source for i in claim.items), items=items, out=claim.night,
                    model_uri=model_uri, device=device, ledger=out_dir, owner=owner)


def quarantined_at_claim(ledger: Ledger, claim: Claim) -> list[dict]:
    """The summary entries of the items a night quarantined instead of scoring (their last
    attempt's claim had expired)."""
    return [FileResult(i.source, "failed", f"{i.last_error} (quarantined after {i.attempts} attempt(s): "
                                           f"{ledger.note_path(i)})").summary() for i in claim.quarantined]


def remove_killed_runs_temp_files(out_dir: Path) -> None:
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


# --- the summary -----------------------------------------------------------------------------------

def tally(detector: Detector, results: list[FileResult]) -> tuple[FileStats, list[str]]:
    """The night's counts over every scored file, and a warning per file lacking input columns."""
    night = FileStats(detector)
    warnings = []
    for result in results:
        if result.stats is not None:
            night.merge(result.stats)
            if result.stats.missing_columns:
                warnings.append(f"warning: {missing_line(result.summary())}")
    return night, warnings


def night_summary(detector: Detector, pinned_uri: str, version: str, night: FileStats,
                  results: list[FileResult], notes: list[str], host_budget: float, host_max_rate: float) -> dict:
    """``summary.json``: the hosts to look at first, the model, the night's counts, every file's
    outcome, notes on the inputs, and drift against the training reference."""
    drift = night.drift_report()
    return {"entities": night.entity_report(host_budget, host_max_rate),
            "model": f"{detector.name} (version {version})", "model_uri": pinned_uri, "model_version": version,
            "threshold": detector.threshold, **night.summary(),
            "files": [r.summary() for r in results], "notes": notes,
            "drift": drift.to_dict() if drift is not None else None}


def write_summary(out: Path, summary: dict) -> Path:
    """``OUT/summary.json``, atomically."""
    return write_json_atomic(Path(out) / SUMMARY, summary)


def nothing_scored(files: list[dict]) -> dict:
    """A night's result when it claimed nothing to score (``files``: what it quarantined)."""
    return {"files": files, "flows": 0, "anomalies": 0, "night": None}


def night_failure(result: dict) -> str | None:
    """Why a night counts as failed (some file failed), or None."""
    failed = [f for f in result["files"] if f["status"] != "ok"]
    if not failed:
        return None
    names = ", ".join(display_name(f["source"]) for f in failed[:5])
    return f"{len(failed)} of {len(result['files'])} files failed: {names}"
