"""Batch scoring of traffic logs: every row in, every row out, in order, streaming.

``score_file`` reads a log batch by batch (``components.data.logs``), scales each batch with the
detector's transform, feeds the streaming per-flow scorer (which carries the last flows across
batch boundaries, so the result equals scoring the whole file at once), and writes
``OUT/<stem>.scored.parquet`` atomically: the typed input columns (canonical names) plus the
columns of ``SCORE_FIELDS`` (``anomaly_score``, ``is_anomaly``, ``top_feature_1..3``,
``model_name``, ``model_version``).
Memory is bounded by the batch size, whatever the file size; the night's report (counts, top
anomalies, drift) is accumulated on the way (``report.night.FileStats``).
"""
from __future__ import annotations

import re
import time
import zipfile
import zlib
from collections.abc import Callable
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from components.data.background import WriteBehind, prefetch
from components.data.clock import Clock, ClockContradiction
from components.data.contract import load_contract
from components.data.errors import FileLevelError
from components.data.ingest import as_input
from components.data.inputs import InputFile
from components.data.logs import open_log, open_log_rows
from components.data.outputs import AtomicParquetWriter
from components.data.readers import iter_parquet_batches
from components.detect.detector import OUTPUT_COLUMNS, Detector, identifiers
from components.detect.flow_scores import ScoredFlows
from components.report.night import FileStats

#: The columns scoring adds to every row, typed: the detector's output (``OUTPUT_COLUMNS``: score,
#: flag, top features; text unless typed here) and the model that scored it. The one definition
#: of the scored files' schema; the pyfunc's output signature (``packaging``) is its first part.
SCORE_FIELDS = [pa.field(name, {"anomaly_score": pa.float64(), "is_anomaly": pa.bool_()}.get(name, pa.string()))
                for name in (*OUTPUT_COLUMNS, "model_name", "model_version")]
Progress = Callable[[int, int, int], None]  # (bytes done, bytes total, rows done)
#: Default for ``max_missing_share``: a file lacking more of the model's inputs than this is not
#: scored (its scores would say more about the gaps than about the traffic).
MAX_MISSING_SHARE = 0.25


@dataclass
class FileResult:
    source: str
    status: str  # "ok" | "failed"
    error: str | None = None
    output: str | None = None
    stats: FileStats | None = None
    seconds: float = field(default=0.0, compare=False)
    #: the failure may not happen again (an I/O error, a bug): worth another try on a later night;
    #: a problem of the file's content is not
    transient: bool = field(default=False, compare=False)

    def summary(self) -> dict:
        base = {"source": self.source, "status": self.status, "error": self.error, "output": self.output}
        if self.stats is not None:
            base.update(self.stats.summary())
        return base


def scored_name(stem: str) -> str:
    return f"{stem}.scored.parquet"


def score_file(detector: Detector, item: InputFile | Path, out: Path, stem: str, version: str,
               device: str = "cpu", on_progress: Progress | None = None,
               batch_rows: int | None = None, max_missing_share: float = MAX_MISSING_SHARE) -> FileResult:
    """Score one log (a file, gzipped or not, or a zip member) into ``out/<stem>.scored.parquet``;
    a file-level problem, at its header or found mid-stream (a corrupt row group, a truncated
    gzip), fails only this file, with a one-line reason. Anything else (a bug) is raised."""
    item = as_input(item)
    started = time.perf_counter()
    contract = load_contract()
    clock = Clock(contract.pm_hours, contract.late_hours)
    while True:
        log, failure = _open(detector, lambda clock=clock: open_log(item, clock=clock), max_missing_share)
        if failure is not None:
            return _failed(item.source, failure, started)
        stats = FileStats(detector, source=item.display, missing_features=missing_features(detector, log),
                          missing_columns=missing_columns(log))
        target = Path(out) / scored_name(stem)
        try:
            _stream(detector, log, target, detector.scorer(device=device), version, stats, None, True,
                    batch_rows, on_progress)
        except ClockContradiction:  # a 24-hour file after all: score it again on 24 hours
            clock = Clock(contract.pm_hours, contract.late_hours, fixed_24h=True)
            continue
        except Exception as exc:
            failure = read_failure(exc)
            if failure is None:
                raise
            return _failed(item.source, failure, started)
        return FileResult(item.source, "ok", None, str(target), stats, time.perf_counter() - started)


def score_part(detector: Detector, path: Path, target: Path, start: int, stop: int, n_rows: int,
               version: str, device: str = "cpu", max_missing_share: float = MAX_MISSING_SHARE,
               clock: str | None = None) -> FileResult:
    """Rows ``[start, stop)`` of a big parquet log into ``target``, scored exactly as in the whole
    file: the part also reads the ``T - 1`` flows on each side that its windows need, and its
    timestamps on the clock decided for the whole file (``clock``: ``logs.parquet_clock``)."""
    started = time.perf_counter()
    if detector.host_windows:
        raise ValueError("a host-window model scores a file whole: score_file, not score_part")
    stride = detector.rule.stride_for(detector.window)
    first = (max(0, start - detector.window + 1) // stride) * stride
    last = min(n_rows, stop + detector.window - 1)
    contract = load_contract()
    decided = Clock.decided(clock, contract.pm_hours, contract.late_hours)
    log, failure = _open(detector, lambda: open_log_rows(Path(path), first, last, decided), max_missing_share)
    if failure is not None:
        return _failed(str(path), failure, started)
    stats = FileStats(detector, source=Path(path).name, missing_features=missing_features(detector, log),
                      missing_columns=missing_columns(log))
    scorer = detector.scorer(device=device, start=first)
    try:
        _stream(detector, log, target, scorer, version, stats, (start, stop), last == n_rows, None, None)
    except Exception as exc:
        failure = read_failure(exc)
        if failure is None:
            raise
        return _failed(str(path), failure, started)
    return FileResult(str(path), "ok", None, str(target), stats, time.perf_counter() - started)


def _failed(source: str, failure: tuple[str, bool], started: float) -> FileResult:
    reason, transient = failure
    return FileResult(source, "failed", reason, seconds=time.perf_counter() - started, transient=transient)


def internal_failure(source: str, exc: BaseException, log: Path) -> FileResult:
    """What a bug (or out of memory) in scoring a file says: its type and message, and the log
    its traceback went to; transient, so a later night may try the file again."""
    return FileResult(source, "failed", f"internal error: {type(exc).__name__}: {one_line_reason(exc)} (see {log})",
                      transient=True)


def one_line_reason(exc: BaseException | str) -> str:
    """A failure reason for a summary, a quarantine note and a terminal: one line, printable (a
    corrupt file's message can quote its raw bytes; they are written as ``\\xNN``)."""
    text = " ".join(str(exc).split())
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text) or type(exc).__name__


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def read_failure(exc: BaseException) -> tuple[str, bool] | None:
    """(reason, transient) when ``exc`` says the log cannot be read or scored (its content, or an
    I/O error), else None (a bug: the caller reports it as an internal error). An ``OSError``
    with an errno (a vanished share, a full disk) may pass; a corrupt page or stream will not."""
    if isinstance(exc, FileLevelError):
        return one_line_reason(exc), False
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"I/O error: {one_line_reason(exc.strerror or exc)}", True
    if isinstance(exc, (OSError, EOFError, zlib.error, zipfile.BadZipFile, pa.ArrowException, UnicodeDecodeError)):
        return f"corrupt: {one_line_reason(exc)}", False
    return None


def merge_parts(parts: list[Path], target: Path) -> Path:
    """Concatenate scored parts, in order, into one file (atomically), then remove the parts."""
    import pyarrow.parquet as pq

    writer = AtomicParquetWriter(target, pq.read_schema(parts[0]))
    try:
        for part in parts:
            for batch in iter_parquet_batches(pq.ParquetFile(part), 65_536):
                writer.write(pa.Table.from_batches([batch]))
        written = writer.commit()
    except BaseException:
        writer.abort()
        raise
    for part in parts:
        part.unlink(missing_ok=True)
    return written


def missing_features(detector: Detector, log) -> list[str]:
    """The model's inputs that the log does not have (scored at their benign centre)."""
    return [n for n in detector.feature_names if log.plan.column(n) is None]


def missing_columns(log) -> list[str]:
    """Every contract feature column the log lacks, model input or not (a duplicate or a column
    constant on benign training flows is not one): what the file's report lists as missing."""
    return [n for n in load_contract().feature_names if log.plan.column(n) is None]


def _open(detector: Detector, opener, max_missing_share: float = MAX_MISSING_SHARE):
    """(log, None) or (None, (one-line reason the file cannot be scored, transient)). A contract-required
    column that is absent fails at the header (``plan_header``); an optional model input may be
    absent up to ``max_missing_share`` of the inputs, and is named in the file's report."""
    try:
        log = opener()
    except Exception as exc:
        failure = read_failure(exc)
        if failure is None:
            raise
        return None, failure
    missing = missing_features(detector, log)
    if len(missing) > max_missing_share * len(detector.feature_names):
        log.close()
        reason = (f"{len(missing)} of the model's {len(detector.feature_names)} inputs are missing "
                  f"(more than {max_missing_share:.0%}): {', '.join(missing)}")
        return None, (reason, False)
    return log, None


def _stream(detector: Detector, log, target: Path, scorer, version: str, stats: FileStats,
            keep: tuple[int, int] | None, file_end: bool, batch_rows: int | None,
            on_progress: Progress | None) -> None:
    """Feed the log's batches to the scorer and write every row whose score is final (within
    ``keep``, the file-index range of a part) to ``target``, atomically."""
    writer = AtomicParquetWriter(target, pa.schema(list(log.schema) + SCORE_FIELDS))
    behind = WriteBehind(name="flowae-scored-writer")  # parquet encoding beside the model (no GIL)
    report = WriteBehind(name="flowae-night-report")  # the night's counts beside the model, in order
    names = pa.array(detector.feature_names, pa.string())
    pending: list[tuple[pa.Table, np.ndarray]] = []
    rows = 0
    by_host = detector.host_windows  # a host's windows reach anywhere in the file: score it whole
    try:
        with _model_threads(), closing(prefetch(_rebatch(log.batches, batch_rows), name="flowae-log-reader")) as batches:
            for batch in batches:
                pending.append((batch, scale(detector, batch)))
                rows += batch.num_rows
                if not by_host:
                    _write_scored((behind, report), writer, pending, scorer.feed(pending[-1][1]), names, detector,
                                  version, stats, keep)
                if on_progress is not None:
                    on_progress(log.bytes_read, log.size_bytes, rows)
        with _model_threads():
            if by_host:
                tail = _score_whole_by_host(detector, pending, scorer.device)
            else:
                tail = scorer.finish() if file_end else scorer.emit_until(keep[1])
        _write_scored((behind, report), writer, pending, tail, names, detector, version, stats, keep)
        left = sum(t.num_rows for t, _ in pending)
        if left and (keep is None or file_end):
            raise RuntimeError(f"{log.path}: {left} rows were left unscored")
        behind.wait()
        report.wait()
        writer.commit()
    except BaseException:
        behind.close()
        report.close()
        writer.abort()
        raise
    finally:
        behind.close()
        report.close()
        log.close()


@contextmanager
def _model_threads():
    """Torch's CPU threads for the model, on this thread, one fewer than it has (at least one)
    while a file streams: the log reader, the parquet writer and the night's report run on their
    own threads beside the model. On the shared 2-core machine the LSTM with 2 threads took 2-3x
    the wall time of 1 thread (its threads wait on each other for a busy core), with identical
    scores. Torch's setting is per calling thread (OpenMP); it is restored on the way out."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, before - 1))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _score_whole_by_host(detector: Detector, pending: list[tuple[pa.Table, np.ndarray]], device: str) -> ScoredFlows:
    """A host-window model's scores of a whole file (every batch read): memory grows with the
    file, unlike the streaming path of global windows."""
    if not pending:
        return ScoredFlows.concat([])
    table = pa.concat_tables([t for t, _ in pending], promote_options="default")
    hosts, times = identifiers(table)
    return detector.score_sequence(np.concatenate([x for _, x in pending]), hosts, times, device=device)


def scale(detector: Detector, batch: pa.Table) -> np.ndarray:
    """A typed batch -> the detector's scaled float32 features (the one feature path)."""
    return detector.transform.scale_rows(batch)


def _write_scored(workers: tuple[WriteBehind, WriteBehind], writer: AtomicParquetWriter, pending: list[tuple[pa.Table, np.ndarray]],
                  scored: ScoredFlows, names: pa.Array, detector: Detector, version: str,
                  stats: FileStats, keep: tuple[int, int] | None) -> None:
    """Write the rows whose scores are final (the oldest ``len(scored)`` pending rows) and add
    them to the night's report, each on its own worker thread (``workers``: writer, report), in
    the order the rows came; neither changes the rows or features it is handed."""
    k = len(scored)
    if k == 0:
        return
    rows, x = _take_front(pending, k)
    top, values = scored.top_features, scored.scores
    if keep is not None:  # a part of a file: only its own rows (the others were context)
        index = np.arange(scored.first, scored.first + k)
        mask = (index >= keep[0]) & (index < keep[1])
        if not mask.any():
            return
        rows, x, top, values = rows.filter(pa.array(mask)), x[mask], top[mask], values[mask]
    n = len(values)
    # text columns by Arrow ``take`` from the feature names (no Python string per row)
    columns = {
        "anomaly_score": pa.array(values, pa.float64()),
        "is_anomaly": pa.array(values > detector.threshold, pa.bool_()),
        **{f"top_feature_{i + 1}": names.take(pa.array(top[:, i].astype(np.int32))) if top.shape[1] > i
           else pa.nulls(n, pa.string()) for i in range(3)},
        "model_name": pa.array([detector.name], pa.string()).take(pa.array(np.zeros(n, np.int32))),
        "model_version": pa.array([version], pa.string()).take(pa.array(np.zeros(n, np.int32))),
    }
    out = rows
    for name in (f.name for f in SCORE_FIELDS):
        out = out.append_column(name, columns[name])
    behind, report = workers
    behind.submit(writer.write, out)
    report.submit(stats.add_scored, out, x, top)


def _take_front(pending: list[tuple[pa.Table, np.ndarray]], k: int) -> tuple[pa.Table, np.ndarray]:
    """Remove and return the first ``k`` rows (and their scaled features) across pending batches."""
    tables, xs, need = [], [], k
    while need:
        head, x = pending[0]
        if head.num_rows <= need:
            pending.pop(0)
            tables.append(head)
            xs.append(x)
            need -= head.num_rows
        else:
            tables.append(head.slice(0, need))
            xs.append(x[:need])
            pending[0] = (head.slice(need), x[need:])
            need = 0
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return table, (np.concatenate(xs) if len(xs) > 1 else xs[0])


def _rebatch(batches, rows: int | None):
    """Optionally cut batches to at most ``rows`` rows (tests use it to force many boundaries)."""
    for batch in batches:
        if rows is None:
            yield batch
            continue
        for lo in range(0, batch.num_rows, rows):
            yield batch.slice(lo, rows)


__all__ = ["MAX_MISSING_SHARE", "OUTPUT_COLUMNS", "SCORE_FIELDS", "FileResult", "internal_failure", "merge_parts",
           "missing_features", "one_line_reason", "read_failure", "score_file", "score_part", "scored_name"]
