"""Ingest: raw CIC-IDS2017 files -> curated parquet + quarantine parquet + manifest, nothing lost.

Per input (a file, a ``.csv.gz``, a member of a zip archive; ``ingest_paths`` takes the inputs in
turn, the Prefect flow up to ``max_parallel_files`` at once), one record batch at a time: read and
hash (``readers``, ``streams``), map the header onto the contract (``headers``), cast and split rows
(``validation``), stream the halves into atomic parquet writers (``outputs``), and let Great
Expectations report on a seeded sample of the same rows (``sampling``, ``gx_validation``). Reading
runs ahead and writing behind the checks on worker threads (``background``); GX runs in a worker
process (``gx_worker``) started when the file starts, so that its import overlaps the rows, and
validates the sample while the outputs are closed.

Outputs (fixed by DESIGN.md)::

    OUT/curated/<stem>.parquet     typed rows, canonical names, + source_file, row_number
    OUT/quarantine/<stem>.parquet  rows set aside, raw text, + raw_line, source_file, row_number,
                                   quarantine_reason (only when there are any)
    OUT/manifest.json              contract version, one entry per input in capture order, and
                                   how that order was decided (``order``)
    OUT/validation/<stem>.json     GX result on the sample (+ sample size); data_docs/ HTML

A file-level problem (unreadable, empty, header only, binary, unknown header, missing required
column, nested or corrupt parquet) fails that file with one line ``path: reason``; the other files
go on. A file whose every row is quarantined ends as ``empty`` (not ok). For every file that is
ingested, rows in == rows curated + rows quarantined, checked here (``AccountingError``).
"""
from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from components.data.background import WriteBehind, prefetch
from components.data.capture_order import FileOrder, order_files
from components.data.clock import Clock, ClockContradiction
from components.data.contract import load_contract
from components.data.errors import FileLevelError
from components.data.expectations import load_suite
from components.data.gx_validation import (
    DEFAULT_TIMEOUT_S,
    PendingValidation,
    build_data_docs,
    forget_context,
    start_worker,
    submit,
)
from components.data.headers import plan_header
from components.data.inputs import InputFile, discover_inputs, display_name
from components.data.outputs import AtomicParquetWriter, remove_stale_temp_files, write_json_atomic
from components.data.readers import RawSource, open_input, open_source
from components.data.sampling import RowSample
from components.data.validation import (
    ColumnStats,
    InvalidValuePolicy,
    bad_line_reason,
    bad_lines_table,
    check_batch,
    curated_schema,
    quarantine_schema,
)

Progress = Callable[[int, int, int], None]  # (bytes done, bytes total, rows done)
# Errors that mean "this file cannot be read", not "the disk hiccupped": they fail the file at once.
PERMANENT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


class AccountingError(RuntimeError):
    """rows in != rows curated + rows quarantined: a bug, never a data problem."""


@dataclass(frozen=True)
class IngestConfig:
    """How to ingest. ``block_size`` bounds the reader's memory; ``gx_sample_rows`` bounds how many
    rows of each file Great Expectations validates (a seeded sample drawn across the whole file)."""

    out: Path
    invalid_values: InvalidValuePolicy = "keep"
    block_size: int = 8 << 20
    gx_sample_rows: int = 50_000
    gx_seed: int = 0
    run_gx: bool = True
    gx_timeout_s: float = DEFAULT_TIMEOUT_S  # longest wait for the GX worker's answer
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

    @property
    def docs_dir(self) -> Path:
        return self.validation_dir / "data_docs"


@dataclass
class FileReport:
    """One manifest entry; the first seven fields are the contract of ``manifest.json``."""

    source: str
    sha256: str | None = None
    status: str = "failed"  # "ok" | "empty" (every row quarantined) | "failed"
    error: str | None = None
    rows_in: int = 0
    rows_curated: int = 0
    rows_quarantined: int = 0
    variant: str | None = None
    first_timestamp: str | None = None  # first curated timestamp, ISO; orders files without a day name
    timestamp_clock: str | None = None  # "12h" | "24h" | None (no timestamps)
    timestamps_unparsable: int = 0  # rows kept with a null timestamp because it did not parse
    curated: str | None = None
    quarantine: str | None = None
    notes: list[str] = field(default_factory=list)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    imputed_values: dict[str, int] = field(default_factory=dict)
    nulled_values: dict[str, int] = field(default_factory=dict)  # kept rows whose value became null
    null_counts: dict[str, int] = field(default_factory=dict)
    inf_counts: dict[str, int] = field(default_factory=dict)
    validation_success: bool | None = None
    validation_sample_rows: int | None = None
    failed_expectations: list[str] = field(default_factory=list)
    seconds: float = field(default=0.0, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def name(self) -> str:
        """The input's own file name (an archive member's name without its folder)."""
        return PurePosixPath(display_name(self.source)).name

    def one_line(self) -> str:
        """``name: status, rows in/curated/quarantined[, reason]`` for CLI summaries."""
        text = (f"{display_name(self.source)}: {self.status}, rows in {self.rows_in}, "
                f"curated {self.rows_curated}, quarantined {self.rows_quarantined}")
        return f"{text}, {self.error}" if self.error else text

    def manifest_entry(self) -> dict:
        entry = asdict(self)
        entry.pop("seconds")
        return entry


def as_input(item: InputFile | Path | str) -> InputFile:
    return item if isinstance(item, InputFile) else InputFile(Path(item))


def ingest_file(item: InputFile | Path, cfg: IngestConfig, stem: str | None = None,
                on_progress: Progress | None = None) -> FileReport:
    """Ingest one input. File-level problems come back as a failed report; a transient OSError
    (anything but not-found/permission) propagates so that a caller may retry it."""
    item = as_input(item)
    stem = stem or item.stem
    started = time.perf_counter()
    if cfg.run_gx:  # GX's import and context build on the other core while the rows stream
        start_worker(cfg.docs_dir)
    contract = load_contract(cfg.contract_path)
    clock = Clock(contract.pm_hours, contract.late_hours)
    while True:
        report = FileReport(source=item.source)
        try:
            _ingest_input(item, cfg, stem, report, on_progress, clock)
        except ClockContradiction:  # a 24-hour file after all: read it again (see clock.py)
            clock = Clock(contract.pm_hours, contract.late_hours, fixed_24h=True)
            continue
        break
    report.seconds = time.perf_counter() - started
    return report


def _ingest_input(item: InputFile, cfg: IngestConfig, stem: str, report: FileReport,
                  on_progress: Progress | None, clock: Clock) -> None:
    try:
        with open_input(item) as data:
            try:
                source = open_source(data, cfg.block_size)
                _ingest_rows(source, cfg, stem, report, on_progress, clock)
            except (FileLevelError, pa.ArrowInvalid):
                report.sha256 = data.sha256()  # a failed file is still named by its content
                raise
    except FileLevelError as exc:
        mark_failed(report, cfg, stem, str(exc))
    except PERMANENT_OS_ERRORS as exc:
        reason = "file not found (missing or removed before it could be read)" \
            if isinstance(exc, FileNotFoundError) else f"cannot read: {exc.strerror or exc}"
        mark_failed(report, cfg, stem, reason)
    except pa.ArrowInvalid as exc:
        mark_failed(report, cfg, stem, f"unreadable: {str(exc).splitlines()[0]}")


def mark_failed(report: FileReport, cfg: IngestConfig, stem: str, reason: str) -> None:
    """A failed file leaves no outputs behind (not even those of an earlier run)."""
    report.status, report.error = "failed", " ".join(reason.split())
    report.rows_in = report.rows_curated = report.rows_quarantined = 0
    report.curated = report.quarantine = None
    for stale in (cfg.curated_dir / f"{stem}.parquet", cfg.quarantine_dir / f"{stem}.parquet",
                  cfg.validation_dir / f"{stem}.json"):
        stale.unlink(missing_ok=True)


def _ingest_rows(source: RawSource, cfg: IngestConfig, stem: str, report: FileReport,
                 on_progress: Progress | None, clock: Clock) -> None:
    contract = load_contract(cfg.contract_path)
    plan = plan_header(source.header, contract)
    report.variant = plan.variant
    if plan.unknown:
        report.notes.append("unknown columns left out of curated: " + ", ".join(
            _describe_unknown(source, i, h) for i, h in enumerate(source.header)
            if h in plan.unknown))
    data = source.data
    source_file = data.item.name
    curated = AtomicParquetWriter(cfg.curated_dir / f"{stem}.parquet", curated_schema(plan))
    quarantine = AtomicParquetWriter(cfg.quarantine_dir / f"{stem}.parquet",
                                     quarantine_schema(plan), always_write=False)
    sample = RowSample(cfg.gx_sample_rows, cfg.gx_seed) if cfg.run_gx else None
    behind = WriteBehind()
    reasons: Counter = Counter()
    stats = ColumnStats()
    rows_in = 0
    first_timestamp = None
    no_rows = np.zeros(0, dtype=np.int64)
    try:  # read on the read-ahead thread; cast and check here; write on the write-behind thread
        with closing(prefetch(source.batches([m.position for m in plan.columns]))) as batches:
            for raw in batches:
                rows_in += raw.rows + len(raw.bad_lines)
                parts = []
                if raw.rows:
                    frame_rows = sample.candidates(raw.rows) if sample is not None else no_rows
                    checked = check_batch(raw, plan, contract, source_file, cfg.invalid_values,
                                          clock, frame_rows)
                    if sample is not None:
                        sample.add(checked.validation_frame)
                    behind.submit(curated.write, checked.curated)
                    reasons.update(checked.reasons)
                    stats.add(checked.stats)
                    if first_timestamp is None and "timestamp" in checked.curated.column_names:
                        first_timestamp = _first_valid(checked.curated["timestamp"])
                    parts.append(checked.quarantine)
                if raw.bad_lines:
                    parts.append(bad_lines_table(raw.bad_lines, plan, source_file))
                    reasons.update(bad_line_reason(b, plan) for b in raw.bad_lines)
                quarantined = _merge_quarantine(parts)
                if quarantined is not None:
                    behind.submit(quarantine.write, quarantined)
                if on_progress is not None:
                    on_progress(data.bytes_read, data.size, rows_in)
        if rows_in == 0:
            raise FileLevelError("header only, no data rows")
        report.sha256 = data.sha256()  # every byte has been read and hashed by now
        pending = None
        if sample is not None and (table := sample.table()) is not None:
            pending = submit(load_suite(), table, stem, cfg.docs_dir, cfg.gx_timeout_s)
        behind.wait()  # the last batches are written while GX validates the sample
        if rows_in != curated.rows + quarantine.rows:
            raise AccountingError(f"{data.item.source}: rows in {rows_in} != curated {curated.rows}"
                                  f" + quarantined {quarantine.rows}")
    except BaseException:
        behind.close()
        curated.abort()
        quarantine.abort()
        raise
    behind.close()
    report.rows_in, report.rows_curated, report.rows_quarantined = rows_in, curated.rows, quarantine.rows
    if curated.rows:
        report.status, report.error = "ok", None
        report.curated = str(curated.commit())
    else:
        curated.abort()
        curated.target.unlink(missing_ok=True)
        top, count = Counter(reasons).most_common(1)[0]
        report.status = "empty"
        report.error = (f"no row passed the contract: all {rows_in} rows quarantined "
                        f"(most often {top!r}, {count} rows)")
    written = quarantine.commit()
    report.quarantine = str(written) if written else None
    if pending is not None:  # the outputs were closed and synced while GX validated the sample;
        # no result (GXWorkerError) fails the file, and mark_failed removes them again
        _record_validation(pending, table.num_rows, sample.rows_seen, cfg, stem, report)
    report.quarantine_reasons = dict(sorted(reasons.items()))
    report.imputed_values = {k: v for k, v in sorted(stats.imputed.items()) if v}
    report.nulled_values = {k: v for k, v in sorted(stats.nulled.items()) if v}
    report.null_counts = {c: stats.null.get(c, 0) for c in plan.names if c != "label"}
    report.inf_counts = {c: stats.inf.get(c, 0) for c in plan.names
                         if plan.column(c).spec.dtype in ("float64", "int64")}
    if plan.column("timestamp") is not None:
        report.timestamps_unparsable = stats.text.get("timestamp", 0)
        report.timestamp_clock = clock.decision
        report.first_timestamp = first_timestamp


def _describe_unknown(source: RawSource, position: int, name: str) -> str:
    kind = source.column_types[position] if source.column_types else None
    if kind is not None and pa.types.is_nested(kind):
        return f"{name.strip()!r} (nested {kind})"
    return repr(name.strip())


def _first_valid(column: pa.ChunkedArray) -> str | None:
    valid = pc.drop_null(column)
    return valid[0].as_py().isoformat() if len(valid) else None


def _record_validation(pending: PendingValidation, sample_rows: int, rows_seen: int,
                       cfg: IngestConfig, stem: str, report: FileReport) -> None:
    result = pending.result()  # GXWorkerError (a file-level error) when GX gave no result
    summary = {**result.summary, "sample_rows": sample_rows, "rows_offered": rows_seen,
               "sample_seed": cfg.gx_seed}
    report.validation_success = result.success
    report.validation_sample_rows = sample_rows
    report.failed_expectations = result.failed()
    write_json_atomic(cfg.validation_dir / f"{stem}.json",
                      {"source": report.source, "summary": summary, "gx_results": result.gx_results})


def _merge_quarantine(parts: list[pa.Table | None]) -> pa.Table | None:
    """Rows set aside in this batch, in file order (cast failures and unsplittable lines together)."""
    parts = [t for t in parts if t is not None and t.num_rows]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return pa.concat_tables(parts).sort_by("row_number")


@dataclass
class IngestResult:
    manifest: dict
    reports: list[FileReport]  # in capture order, as in the manifest
    manifest_path: Path
    docs_index: Path | None = None  # the run's Data Docs, when GX ran

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports) and bool(self.reports)


def plan_outputs(inputs: list[str]) -> tuple[list[tuple[InputFile, str]], list[str]]:
    """Inputs to ingest with their output stems; notes for repeats, empty globs and stem clashes."""
    discovery = discover_inputs(inputs)
    notes = list(discovery.notes)
    planned: list[tuple[InputFile, str]] = []
    used: dict[str, InputFile] = {}
    for item in discovery.files:
        stem = item.stem
        if stem in used:
            notes.append(f"{item.display}: same name as {used[stem].source}, written as "
                         f"{stem}__{len(planned)}")
            stem = f"{stem}__{len(planned)}"
        used[stem] = item
        planned.append((item, stem))
    return planned, notes


def check_out_dir(out: Path) -> None:
    """``--out`` must be a folder or not exist yet (ValueError otherwise, before anything is written)."""
    out = Path(out)
    for folder in (out, *out.parents):
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"--out {out}: {folder} is a file, not a folder")
        if folder.exists():
            return


def prepare_output(cfg: IngestConfig) -> list[str]:
    """Before a run: refuse a file as ``--out`` and remove the temp files that killed runs left
    behind. Returns notes for the manifest."""
    check_out_dir(Path(cfg.out))
    removed = remove_stale_temp_files([Path(cfg.out), cfg.curated_dir, cfg.quarantine_dir,
                                       cfg.validation_dir])
    if removed:
        return [f"removed {len(removed)} temp file(s) left by an interrupted run"]
    return []


def stop_validation(cfg: IngestConfig) -> None:
    """A run that fails before its Data Docs: stop its GX worker now (a long-running ``flowae
    serve`` would otherwise keep it, about 0.4 GB, until the next ingest into the same folder)."""
    if cfg.run_gx:
        forget_context(cfg.docs_dir)


def finish_validation(cfg: IngestConfig) -> Path | None:
    """Build the run's Data Docs HTML (``OUT/validation/data_docs/index.html``)."""
    if not cfg.run_gx:
        return None
    try:
        return build_data_docs(cfg.docs_dir, cfg.gx_timeout_s)
    finally:
        forget_context(cfg.docs_dir)  # stops the run's GX worker


def capture_order(reports: list[FileReport]) -> tuple[list[FileReport], FileOrder]:
    """Reports in capture order (``capture_order.order_files``) and the decision.

    The order is decided over the inputs that have curated rows, by their names and first
    curated timestamps; inputs without (failed, empty) follow in the order given."""
    ingested = [r for r in reports if r.curated]
    counts = Counter(r.name for r in ingested)
    key = {id(r): r.name if counts[r.name] == 1 else Path(r.curated).stem for r in ingested}
    names = [key[id(r)] for r in ingested]
    stamps = {key[id(r)]: dt.datetime.fromisoformat(r.first_timestamp) if r.first_timestamp else None
              for r in ingested}
    order = order_files(names, stamps)
    by_name = {key[id(r)]: r for r in ingested}
    return [by_name[n] for n in order.files] + [r for r in reports if not r.curated], order


def build_manifest(reports: list[FileReport], notes: list[str], cfg: IngestConfig) -> dict:
    contract = load_contract(cfg.contract_path)
    ordered, order = capture_order(reports)
    return {"contract_version": contract.version, "invalid_values": cfg.invalid_values,
            "notes": notes, "order": order.to_dict(), "files": [r.manifest_entry() for r in ordered]}


def write_manifest(manifest: dict, cfg: IngestConfig) -> Path:
    return write_json_atomic(Path(cfg.out) / "manifest.json", manifest)


IngestEach = Callable[[list[tuple[InputFile, str]]], list[FileReport]]


def run_ingest(inputs: list[str], cfg: IngestConfig, ingest_each: IngestEach) -> IngestResult:
    """The one ingest orchestration: prepare ``OUT`` and plan the inputs, let ``ingest_each`` turn
    every ``(input, stem)`` into its report (``ingest_paths``: in turn; the flow: mapped tasks),
    then the Data Docs and ``manifest.json``. A run that fails before its Data Docs stops its GX
    worker (a long-running ``flowae serve`` would otherwise keep it, about 0.4 GB)."""
    notes = prepare_output(cfg)
    planned, plan_notes = plan_outputs(inputs)
    notes += plan_notes
    try:
        reports = ingest_each(planned)
    except BaseException:
        stop_validation(cfg)
        raise
    docs_index = finish_validation(cfg)
    manifest = build_manifest(reports, notes, cfg)
    ordered, _ = capture_order(reports)
    return IngestResult(manifest, ordered, write_manifest(manifest, cfg), docs_index)


def unreadable(item: InputFile, stem: str, cfg: IngestConfig, error: BaseException) -> FileReport:
    """The report of an input that could not be read (after the caller's retries, if any)."""
    report = FileReport(source=item.source)
    mark_failed(report, cfg, stem, f"cannot read: {error}")
    return report


def ingest_paths(inputs: list[str], cfg: IngestConfig,
                 progress: Callable[[InputFile], Progress | None] | None = None) -> IngestResult:
    """:func:`run_ingest` without Prefect: the inputs one after another, in this process (tests,
    benchmarks). An I/O error fails its file at once (the flow retries it first)."""
    def each(planned: list[tuple[InputFile, str]]) -> list[FileReport]:
        reports = []
        for item, stem in planned:
            try:
                reports.append(ingest_file(item, cfg, stem, progress(item) if progress else None))
            except OSError as exc:
                reports.append(unreadable(item, stem, cfg, exc))
        return reports

    return run_ingest(inputs, cfg, each)


def manifest_failures(manifest: dict) -> tuple[list[str], list[str]]:
    """The gate before training: the inputs that failed ingest (``name (status: error)``) and those
    that failed the data contract (Great Expectations); both empty when the data may train."""
    files = manifest["files"]
    failed = [f"{Path(f['source']).name} ({f['status']}: {f.get('error')})" for f in files if f["status"] != "ok"]
    gx_failed = [Path(f["source"]).name for f in files if f.get("validation_success") is False]
    return failed, gx_failed
