"""Batch scoring of traffic logs: every row in, every row out, in order, streaming.

``score_file`` reads a log batch by batch (``serving``), scales each batch with the detector's
transform, feeds the streaming per-flow scorer (which carries the last flows across batch
boundaries, so the result equals scoring the whole file at once), and writes
``OUT/<stem>.scored.parquet`` atomically: the typed input columns (canonical names) plus
``anomaly_score``, ``is_anomaly``, ``top_feature_1..3``, ``model_name``, ``model_version``.
Memory is bounded by the batch size, whatever the file size; the night's report (counts, top
anomalies, drift) is accumulated on the way (``NightReport``).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from components.data.outputs import AtomicParquetWriter
from components.data.readers import FileLevelError
from components.detect.detector import OUTPUT_COLUMNS, Detector
from components.detect.flow_scores import ScoredFlows
from components.detect.night_report import FileStats
from components.detect.serving import open_log
from components.learn.features import log_column

SCORE_FIELDS = [pa.field("anomaly_score", pa.float64()), pa.field("is_anomaly", pa.bool_()),
                pa.field("top_feature_1", pa.string()), pa.field("top_feature_2", pa.string()),
                pa.field("top_feature_3", pa.string()), pa.field("model_name", pa.string()),
                pa.field("model_version", pa.string())]
Progress = Callable[[int, int, int], None]  # (bytes done, bytes total, rows done)


@dataclass
class FileResult:
    source: str
    status: str  # "ok" | "failed"
    error: str | None = None
    output: str | None = None
    stats: FileStats | None = None
    seconds: float = field(default=0.0, compare=False)

    def summary(self) -> dict:
        base = {"source": self.source, "status": self.status, "error": self.error, "output": self.output}
        if self.stats is not None:
            base.update(self.stats.summary())
        return base


def scored_name(stem: str) -> str:
    return f"{stem}.scored.parquet"


def score_file(detector: Detector, path: Path, out: Path, stem: str, version: str,
               device: str = "cpu", on_progress: Progress | None = None,
               stats: FileStats | None = None, batch_rows: int | None = None) -> FileResult:
    """Score one log into ``out/<stem>.scored.parquet``; a file-level problem fails only this file."""
    started = time.perf_counter()
    try:
        log = open_log(Path(path))
    except FileLevelError as exc:
        return FileResult(str(path), "failed", str(exc), seconds=time.perf_counter() - started)
    except OSError as exc:
        return FileResult(str(path), "failed", f"cannot read: {exc.strerror or exc}",
                          seconds=time.perf_counter() - started)
    missing = [n for n in detector.feature_names if log.plan.column(n) is None]
    if len(missing) > len(detector.feature_names) // 2:
        return FileResult(str(path), "failed", f"{len(missing)} of the model's {len(detector.feature_names)} "
                          f"features are missing (first: {', '.join(missing[:3])})",
                          seconds=time.perf_counter() - started)
    schema = pa.schema(list(log.schema) + SCORE_FIELDS)
    writer = AtomicParquetWriter(Path(out) / scored_name(stem), schema)
    stats = stats or FileStats(detector, source=Path(path).name)
    scorer = detector.scorer(device=device)
    names = np.asarray(detector.feature_names, dtype=object)
    pending: list[pa.Table] = []
    rows = 0
    try:
        for batch in _rebatch(log.batches, batch_rows):
            x = scale(detector, batch)
            stats.add_inputs(x)
            pending.append(batch)
            rows += batch.num_rows
            _write_scored(writer, pending, scorer.feed(x), names, detector, version, stats)
            if on_progress is not None:
                on_progress(log.bytes_read, log.size_bytes, rows)
        _write_scored(writer, pending, scorer.finish(), names, detector, version, stats)
        if pending and sum(t.num_rows for t in pending):
            raise RuntimeError(f"{path}: {sum(t.num_rows for t in pending)} rows were left unscored")
        written = writer.commit()
    except BaseException:
        writer.abort()
        raise
    return FileResult(str(path), "ok", None, str(written), stats, time.perf_counter() - started)


def scale(detector: Detector, batch: pa.Table) -> np.ndarray:
    """A typed batch -> the detector's scaled float32 features (missing columns: no information)."""
    logged = np.full((batch.num_rows, len(detector.feature_names)), np.nan, dtype=np.float32)
    for j, name in enumerate(detector.feature_names):
        if name in batch.column_names:
            values = batch.column(name).to_numpy(zero_copy_only=False)
            logged[:, j] = log_column(np.asarray(values, dtype=np.float64))
    return detector.transform.apply_log(logged, detector.feature_names)


def _write_scored(writer: AtomicParquetWriter, pending: list[pa.Table], scored: ScoredFlows,
                  names: np.ndarray, detector: Detector, version: str, stats: FileStats) -> None:
    """Write the rows whose scores are final (the oldest ``len(scored)`` pending rows)."""
    k = len(scored)
    if k == 0:
        return
    rows = _take_front(pending, k)
    top = scored.top_features
    columns = {
        "anomaly_score": pa.array(scored.scores, pa.float64()),
        "is_anomaly": pa.array(scored.scores > detector.threshold, pa.bool_()),
        **{f"top_feature_{i + 1}": pa.array(names[top[:, i]] if top.shape[1] > i else [None] * k, pa.string())
           for i in range(3)},
        "model_name": pa.array([detector.name] * k, pa.string()),
        "model_version": pa.array([version] * k, pa.string()),
    }
    out = rows
    for name in (f.name for f in SCORE_FIELDS):
        out = out.append_column(name, columns[name])
    writer.write(out)
    stats.add_scored(out)


def _take_front(pending: list[pa.Table], k: int) -> pa.Table:
    """Remove and return the first ``k`` rows across the pending tables (kept in order)."""
    taken, need = [], k
    while need:
        head = pending[0]
        if head.num_rows <= need:
            taken.append(pending.pop(0))
            need -= head.num_rows
        else:
            taken.append(head.slice(0, need))
            pending[0] = head.slice(need)
            need = 0
    return pa.concat_tables(taken) if len(taken) > 1 else taken[0]


def _rebatch(batches, rows: int | None):
    """Optionally cut batches to at most ``rows`` rows (tests use it to force many boundaries)."""
    for batch in batches:
        if rows is None:
            yield batch
            continue
        for lo in range(0, batch.num_rows, rows):
            yield batch.slice(lo, rows)


__all__ = ["OUTPUT_COLUMNS", "FileResult", "score_file", "scored_name"]
