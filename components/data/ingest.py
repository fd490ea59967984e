"""Ingest: raw CIC-IDS2017 files -> curated parquet + quarantine parquet + manifest, nothing lost.

One file at a time, one record batch at a time: read (``readers``), map the header onto the
contract (``headers``), cast and split rows (``validation``), stream the halves into atomic parquet
writers (``outputs``), and let Great Expectations report on the same rows (``gx_validation``).

Outputs (fixed by DESIGN.md)::

    OUT/curated/<stem>.parquet     typed rows, canonical names, + source_file, row_number
    OUT/quarantine/<stem>.parquet  rows set aside, raw text, + raw_line, source_file, row_number,
                                   quarantine_reason (only when there are any)
    OUT/manifest.json              contract version + one entry per input file
    OUT/validation/<stem>.json     GX result (merged summary + raw chunk results); data_docs/ HTML

A file-level problem (unreadable, empty, header only, binary, unknown header, missing required
column) fails that file with one line ``path: reason``; the other files go on. For every file that
is ingested, rows in == rows curated + rows quarantined, checked here (``AccountingError``).
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import pyarrow as pa

from components.data.contract import load_contract
from components.data.expectations import load_suite
from components.data.gx_validation import ChunkedValidator, build_data_docs, forget_context
from components.data.headers import plan_header
from components.data.outputs import AtomicParquetWriter, write_json_atomic
from components.data.readers import FileLevelError, discover_inputs, open_source, sha256_file
from components.data.validation import (
    ColumnStats,
    bad_lines_table,
    check_batch,
    curated_schema,
    quarantine_schema,
)

InvalidValuePolicy = Literal["quarantine", "impute"]
Progress = Callable[[int, int, int], None]  # (bytes done, bytes total, rows done)
# Errors that mean "this file cannot be read", not "the disk hiccupped": they fail the file at once.
PERMANENT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


class AccountingError(RuntimeError):
    """rows in != rows curated + rows quarantined: a bug, never a data problem."""


@dataclass(frozen=True)
class IngestConfig:
    """How to ingest. ``gx_chunk_rows`` bounds GX's memory; ``block_size`` bounds the reader's."""

    out: Path
    invalid_values: InvalidValuePolicy = "quarantine"
    block_size: int = 8 << 20
    gx_chunk_rows: int = 100_000
    run_gx: bool = True
    contract_path: Path | None = None

    @property
    def curated_dir(self) -> Path:
        return Path(self.out) / "curated"

    @property
    def quarantine_dir(self) -> Path:
        return Path(self.out) / "quarantine"

    @property
    def validation_dir(self) -> Path:
        return Path(self.out) / "validation"


@dataclass
class FileReport:
    """One manifest entry; the first seven fields are the contract of ``manifest.json``."""

    source: str
    sha256: str | None = None
    status: str = "failed"
    error: str | None = None
    rows_in: int = 0
    rows_curated: int = 0
    rows_quarantined: int = 0
    variant: str | None = None
    curated: str | None = None
    quarantine: str | None = None
    notes: list[str] = field(default_factory=list)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    imputed_values: dict[str, int] = field(default_factory=dict)
    null_counts: dict[str, int] = field(default_factory=dict)
    inf_counts: dict[str, int] = field(default_factory=dict)
    validation_success: bool | None = None
    failed_expectations: list[str] = field(default_factory=list)
    seconds: float = field(default=0.0, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def one_line(self) -> str:
        """``name: status, rows in/curated/quarantined[, reason]`` for CLI summaries."""
        text = (f"{Path(self.source).name}: {self.status}, rows in {self.rows_in}, "
                f"curated {self.rows_curated}, quarantined {self.rows_quarantined}")
        return f"{text}, {self.error}" if self.error else text

    def manifest_entry(self) -> dict:
        entry = asdict(self)
        entry.pop("seconds")
        return entry


def ingest_file(path: Path, cfg: IngestConfig, stem: str | None = None,
                on_progress: Progress | None = None) -> FileReport:
    """Ingest one file. File-level problems come back as a failed report; a transient OSError
    (anything but not-found/permission) propagates so that a caller may retry it."""
    path = Path(path)
    report = FileReport(source=str(path.absolute()))
    stem = stem or path.stem
    started = time.perf_counter()
    try:
        report.sha256 = sha256_file(path)
        _ingest_rows(path, cfg, stem, report, on_progress)
        report.status, report.error = "ok", None
    except FileLevelError as exc:
        mark_failed(report, cfg, stem, str(exc))
    except PERMANENT_OS_ERRORS as exc:
        reason = "file not found (missing or removed before it could be read)" \
            if isinstance(exc, FileNotFoundError) else f"cannot read: {exc.strerror or exc}"
        mark_failed(report, cfg, stem, reason)
    except pa.ArrowInvalid as exc:
        mark_failed(report, cfg, stem, f"unreadable: {str(exc).splitlines()[0]}")
    report.seconds = time.perf_counter() - started
    return report


def mark_failed(report: FileReport, cfg: IngestConfig, stem: str, reason: str) -> None:
    """A failed file leaves no outputs behind (not even those of an earlier run)."""
    report.status, report.error = "failed", reason
    report.rows_in = report.rows_curated = report.rows_quarantined = 0
    report.curated = report.quarantine = None
    for stale in (cfg.curated_dir / f"{stem}.parquet", cfg.quarantine_dir / f"{stem}.parquet",
                  cfg.validation_dir / f"{stem}.json"):
        stale.unlink(missing_ok=True)


def _ingest_rows(path: Path, cfg: IngestConfig, stem: str, report: FileReport,
                 on_progress: Progress | None) -> None:
    contract = load_contract(cfg.contract_path)
    source = open_source(path, cfg.block_size)
    plan = plan_header(source.header, contract)
    report.variant = plan.variant
    if plan.unknown:
        report.notes.append("unknown columns left out of curated: "
                            + ", ".join(repr(c.strip()) for c in plan.unknown))
    source_file = path.name
    curated = AtomicParquetWriter(cfg.curated_dir / f"{stem}.parquet", curated_schema(plan))
    quarantine = AtomicParquetWriter(cfg.quarantine_dir / f"{stem}.parquet",
                                     quarantine_schema(plan), always_write=False)
    validator = (ChunkedValidator(load_suite(), plan.names, stem, cfg.validation_dir / "data_docs",
                                  cfg.gx_chunk_rows) if cfg.run_gx else None)
    reasons: Counter = Counter()
    stats = ColumnStats()
    rows_in = 0
    try:
        for raw in source.batches:
            checked = check_batch(raw, plan, contract, source_file, cfg.invalid_values)
            bad_lines = source.drain_bad_lines()
            rows_in += len(raw.row_numbers) + len(bad_lines)
            curated.write(checked.curated)
            quarantined = _merge_quarantine(checked.quarantine, bad_lines, plan, source_file)
            quarantine.write(quarantined)
            reasons.update(checked.reasons)
            reasons.update(f"wrong field count: {b.fields} of {plan.width}" for b in bad_lines)
            stats.add(checked.stats)
            if validator is not None:
                validator.add(checked.validation_frame)
            if on_progress is not None:
                on_progress(source.bytes_read, source.size_bytes, rows_in)
        trailing = source.drain_bad_lines()  # a bad last line can arrive after the last batch
        if trailing:
            rows_in += len(trailing)
            quarantine.write(bad_lines_table(trailing, plan, source_file))
            reasons.update(f"wrong field count: {b.fields} of {plan.width}" for b in trailing)
        if rows_in == 0:
            raise FileLevelError("header only, no data rows")
        if rows_in != curated.rows + quarantine.rows:
            raise AccountingError(f"{path}: rows in {rows_in} != curated {curated.rows} + "
                                  f"quarantined {quarantine.rows}")
        if validator is not None:
            result = validator.finish()
            report.validation_success = result.success
            report.failed_expectations = result.failed()
            write_json_atomic(cfg.validation_dir / f"{stem}.json",
                              {"source": report.source, "summary": result.summary,
                               "gx_results": result.gx_results})
    except BaseException:
        curated.abort()
        quarantine.abort()
        raise
    report.curated = str(curated.commit())
    written = quarantine.commit()
    report.quarantine = str(written) if written else None
    report.rows_in, report.rows_curated, report.rows_quarantined = rows_in, curated.rows, quarantine.rows
    report.quarantine_reasons = dict(sorted(reasons.items()))
    report.imputed_values = {k: v for k, v in sorted(stats.imputed.items()) if v}
    report.null_counts = {c: stats.null.get(c, 0) for c in plan.names if c != "label"}
    report.inf_counts = {c: stats.inf.get(c, 0) for c in plan.names
                         if plan.column(c).spec.dtype in ("float64", "int64")}



def _merge_quarantine(table: pa.Table | None, bad_lines, plan, source_file: str) -> pa.Table | None:
    """Rows set aside in this batch, in file order (cast failures and unsplittable lines together)."""
    parts = [t for t in (table, bad_lines_table(bad_lines, plan, source_file) if bad_lines else None)
             if t is not None and t.num_rows]
    if not parts:
        return None
    merged = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
    return merged.sort_by("row_number") if len(parts) > 1 else merged


@dataclass
class IngestResult:
    manifest: dict
    reports: list[FileReport]
    manifest_path: Path

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports) and bool(self.reports)


def plan_outputs(inputs: list[str]) -> tuple[list[tuple[Path, str]], list[str]]:
    """Files to ingest with their output stems; notes for repeats, empty globs and stem clashes."""
    discovery = discover_inputs(inputs)
    notes = list(discovery.notes)
    planned: list[tuple[Path, str]] = []
    used: dict[str, Path] = {}
    for path in discovery.files:
        stem = path.stem
        if stem in used:
            notes.append(f"{path}: same name as {used[stem]}, written as {stem}__{len(planned)}")
            stem = f"{stem}__{len(planned)}"
        used[stem] = path
        planned.append((path, stem))
    return planned, notes


def finish_validation(cfg: IngestConfig) -> Path | None:
    """Build the run's Data Docs HTML (``OUT/validation/data_docs/index.html``)."""
    if not cfg.run_gx:
        return None
    docs = cfg.validation_dir / "data_docs"
    try:
        return build_data_docs(docs)
    finally:
        forget_context(docs)


def build_manifest(reports: list[FileReport], notes: list[str], cfg: IngestConfig) -> dict:
    contract = load_contract(cfg.contract_path)
    return {"contract_version": contract.version, "invalid_values": cfg.invalid_values,
            "notes": notes, "files": [r.manifest_entry() for r in reports]}


def write_manifest(reports: list[FileReport], notes: list[str], cfg: IngestConfig) -> Path:
    return write_json_atomic(Path(cfg.out) / "manifest.json", build_manifest(reports, notes, cfg))


def ingest_paths(inputs: list[str], cfg: IngestConfig,
                 progress: Callable[[Path], Progress | None] | None = None) -> IngestResult:
    """The whole ingest without Prefect: every file in turn, then the manifest."""
    planned, notes = plan_outputs(inputs)
    reports = []
    for path, stem in planned:
        try:
            report = ingest_file(path, cfg, stem, progress(path) if progress else None)
        except OSError as exc:  # transient I/O errors: no retry here, the file fails
            report = FileReport(source=str(path.absolute()), error=f"cannot read: {exc}")
            mark_failed(report, cfg, stem, report.error)
        reports.append(report)
    finish_validation(cfg)
    manifest_path = write_manifest(reports, notes, cfg)
    return IngestResult(build_manifest(reports, notes, cfg), reports, manifest_path)
