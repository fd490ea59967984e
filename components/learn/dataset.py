"""Curated flows as arrays, in time order, split and scaled, with windows that are views.

Why arrays and not one DataFrame: the full CIC-IDS2017 week is 2.8M flows x 78 features. A pandas
frame of it in float64, plus the copies a transform and a window gather make, needed 8-10 GB.
Here each file is read column-pruned, one batch of one row group at a time, each feature column
goes through the signed log into one preallocated float32 matrix, the transform is fitted and
applied column by column in place, and windows are strided views of that matrix: peak memory is
the matrix (about 0.8 GB for the week) plus one batch's columns (1.65 GB peak RSS for 2.8M
synthetic flows in one file, imports included; reading whole files peaked at 4.96 GB).

Time order: files in capture order (``curated_order``), rows in file order (``row_number``),
which is the order the flow meter wrote them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from components.data.contract import BENIGN
from components.data.curated import CuratedDataError, row_counts
from components.data.readers import iter_parquet_batches
from components.jobs import SplitConfig
from components.learn.features import FeatureTransform, Scaler, log_features, select_features
from components.learn.split import (
    CALIBRATION,
    TEST,
    TRAIN,
    VALIDATION,
    Split,
    segment_runs,
    split_flows,
)
from components.learn.windows import Windows, benign_window_mask, build_windows

READ_BATCH_ROWS = 131_072  # rows decoded at a time: one file's columns never sit in memory whole


@dataclass
class FlowSet:
    """Flows of some curated files in time order; ``x`` is signed-log space until scaled."""

    files: list[Path]
    file_index: np.ndarray  # int32 [N]: which of ``files``
    row_number: np.ndarray  # int64 [N]: 1-based data row in its source file
    label_codes: np.ndarray  # int16 [N] into ``label_names``
    label_names: list[str]
    x: np.ndarray  # float32 [N, F] over ``feature_names``
    feature_names: list[str]
    timestamp: np.ndarray | None = None  # datetime64[ms], NaT where unknown
    #: source host of each flow (codes into ``host_names``, -1 unknown): groups flows into
    #: entities and host windows, never a model input
    host_codes: np.ndarray | None = None
    host_names: list[str] | None = None

    def __len__(self) -> int:
        return len(self.file_index)

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self.label_names, dtype=object)[self.label_codes]

    @property
    def is_benign(self) -> np.ndarray:
        if BENIGN not in self.label_names:
            return np.zeros(len(self), dtype=bool)
        return self.label_codes == self.label_names.index(BENIGN)


def load_flows(files: list[Path], feature_names: list[str] | None = None) -> FlowSet:
    """Read curated files into one :class:`FlowSet` (signed-log features, float32).

    ``feature_names`` defaults to the contract features present in every file; a file that lacks
    one of the given features gets NaN there (no information, 0 once scaled).
    """
    if not files:
        raise CuratedDataError("no curated files selected")
    schemas = [pq.read_schema(f) for f in files]
    if feature_names is None:
        common = set(schemas[0].names).intersection(*(s.names for s in schemas[1:]))
        feature_names = select_features(common)
    for f, schema in zip(files, schemas):
        if "label" not in schema.names:
            raise CuratedDataError(f"{f.name}: no label column: training needs rows labelled BENIGN")
    counts = row_counts(files)
    n = int(sum(counts))
    x = np.empty((n, len(feature_names)), dtype=np.float32)
    file_index = np.empty(n, dtype=np.int32)
    row_number = np.empty(n, dtype=np.int64)
    label_codes = np.empty(n, dtype=np.int16)
    has_time = any("timestamp" in s.names for s in schemas)
    timestamp = np.full(n, np.datetime64("NaT"), dtype="datetime64[ms]") if has_time else None
    has_hosts = any("source_ip" in s.names for s in schemas)
    host_codes = np.full(n, -1, dtype=np.int32) if has_hosts else None
    host_names: list[str] = []
    host_index: dict[str, int] = {}
    label_names: list[str] = []
    lo = 0
    for i, (path, schema, rows) in enumerate(zip(files, schemas, counts)):
        present = set(schema.names)
        wanted = [c for c in [*feature_names, "label", "row_number", "timestamp", "source_ip"] if c in present]
        file_lo = lo
        for batch in iter_parquet_batches(pq.ParquetFile(path), READ_BATCH_ROWS, wanted):
            hi = lo + batch.num_rows
            _fill(batch, lo, hi, feature_names, x, label_codes, label_names, timestamp)
            if "row_number" in present:
                row_number[lo:hi] = batch.column("row_number").to_numpy()
            if host_codes is not None and "source_ip" in present:
                host_codes[lo:hi] = _host_codes(batch.column("source_ip"), host_names, host_index)
            lo = hi
        if lo - file_lo != rows:
            raise CuratedDataError(f"{path.name}: read {lo - file_lo} rows, its footer says {rows}")
        file_index[file_lo:lo] = i
        if "row_number" not in present:
            row_number[file_lo:lo] = np.arange(1, rows + 1)
    return FlowSet(list(files), file_index, row_number, label_codes, label_names, x,
                   list(feature_names), timestamp, host_codes, host_names if has_hosts else None)


def _host_codes(column, names: list[str], index: dict[str, int]) -> np.ndarray:
    """Global codes of a batch's source hosts (-1 for a null), growing ``names``."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(pc.cast(column, "string"))
    local = np.asarray([index.setdefault(v, len(index)) for v in encoded.dictionary.to_pylist()], np.int32)
    names.extend(list(index)[len(names):])
    idx = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    return np.where(idx >= 0, local[np.maximum(idx, 0)] if len(local) else -1, -1)


def _fill(batch, lo: int, hi: int, feature_names: list[str], x: np.ndarray, label_codes: np.ndarray,
          label_names: list[str], timestamp: np.ndarray | None) -> None:
    """Rows ``[lo, hi)`` of the preallocated arrays from one batch of a curated file."""
    present = set(batch.schema.names)
    x[lo:hi] = log_features(batch, feature_names)
    encoded = pc.dictionary_encode(batch.column("label"))
    names = [str(v) for v in encoded.dictionary.to_pylist()]
    mapping = np.asarray([_code(label_names, v) for v in names], dtype=np.int16)
    label_codes[lo:hi] = mapping[encoded.indices.to_numpy(zero_copy_only=False)] if hi > lo else []
    if timestamp is not None and "timestamp" in present:
        stamps = batch.column("timestamp").cast("timestamp[ms]").to_numpy(zero_copy_only=False)
        timestamp[lo:hi] = stamps.astype("datetime64[ms]")


def _code(names: list[str], value: str) -> int:
    if value not in names:
        names.append(value)
    return names.index(value)


@dataclass
class PreparedData:
    """A :class:`FlowSet` scaled by a transform fitted on benign training flows, its split, and
    windows inside each run of one file and one split role."""

    flows: FlowSet
    split: Split
    transform: FeatureTransform
    windows: Windows
    window_roles: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    stride: int = 1
    host_windows: bool = False

    @property
    def x(self) -> np.ndarray:
        return self.flows.x

    def runs(self, role: int) -> list[np.ndarray]:
        """Flow indices of each contiguous run (one file, one role) with this role."""
        run_ids = segment_runs(self.flows.file_index, self.split.roles)
        chosen = self.split.roles == role
        if not chosen.any():
            return []
        ids = run_ids[chosen]
        idx = np.flatnonzero(chosen)
        cuts = np.flatnonzero(np.diff(ids)) + 1
        return np.split(idx, cuts)


def prepare(flows: FlowSet, in_training_files: np.ndarray, split_cfg: SplitConfig, window: int,
            stride: int, scaler: Scaler = "standard", max_train_windows: int | None = None,
            host_windows: bool = False) -> PreparedData:
    """Split by time, fit the transform on benign training flows only, scale in place, window.

    Training windows lie inside training runs, validation windows inside validation runs, and
    only windows whose every flow is benign are used for either. ``host_windows``: each window
    holds one source host's consecutive flows (timestamp order) inside a run (``window_groups``).
    """
    is_benign = flows.is_benign
    split = split_flows(is_benign, in_training_files, split_cfg)
    fit_rows = (split.roles == TRAIN) & is_benign
    if fit_rows.sum() < window:
        raise CuratedDataError(f"only {int(fit_rows.sum())} benign training flows; need at least "
                               f"one window of {window}")
    transform = FeatureTransform.fit_log(flows.x, fit_rows, flows.feature_names, scaler)
    if not transform.feature_names:
        raise CuratedDataError("every feature is constant on the benign training flows")
    flows.x = transform.apply_log(flows.x, flows.feature_names)
    flows.feature_names = list(transform.feature_names)
    windows = build_windows(flows.x, window, stride, *window_groups(flows, split, host_windows))
    window_roles = split.roles[windows.starts] if len(windows) else np.zeros(0, np.int8)
    benign = benign_window_mask(is_benign, windows)
    train_idx = np.flatnonzero(benign & (window_roles == TRAIN))
    val_idx = np.flatnonzero(benign & (window_roles == VALIDATION))
    if max_train_windows is not None and len(train_idx) > max_train_windows:
        keep = np.linspace(0, len(train_idx) - 1, max_train_windows).round().astype(np.int64)
        train_idx = train_idx[keep]
    if len(train_idx) == 0 or len(val_idx) == 0:
        counts = split.counts(is_benign)
        raise CuratedDataError(
            f"not enough benign flows for windows of {window}: {len(train_idx)} training and "
            f"{len(val_idx)} validation windows from {counts['train']['benign']} and "
            f"{counts['validation']['benign']} benign flows")
    return PreparedData(flows, split, transform, windows, window_roles, train_idx, val_idx, stride, host_windows)


def window_groups(flows: FlowSet, split: Split, host_windows: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(group key per flow, order inside groups): runs of one file and split role; with
    ``host_windows`` also one source host, ordered by timestamp (flows without a host: one group
    per run, in file order)."""
    runs = segment_runs(flows.file_index, split.roles)
    if not host_windows or flows.host_codes is None:
        return runs, None
    hosts = flows.host_codes.astype(np.int64) + 1  # 0: unknown host
    groups = runs.astype(np.int64) * (int(hosts.max()) + 1) + hosts
    if flows.timestamp is None:
        return groups, np.zeros(len(flows), np.int64)
    stamps = flows.timestamp.astype("datetime64[ms]")
    within = np.where(np.isnat(stamps) | (hosts == 0), np.iinfo(np.int64).min, stamps.astype(np.int64))
    return groups, within


__all__ = ["CALIBRATION", "TEST", "TRAIN", "VALIDATION", "FlowSet", "PreparedData", "load_flows",
           "prepare"]


def save_prepared(data: PreparedData, folder: Path) -> Path:
    """Write the scaled matrix (``x.npy``, memory-mappable), per-flow arrays and the metadata.

    Stages exchange files, not objects: the windows, train, calibrate and evaluate stages of a
    retrain each open this folder (``load_prepared``), and the matrix is paged in, not copied.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    flows = data.flows
    np.save(folder / "x.npy", np.ascontiguousarray(flows.x))
    arrays = {"file_index": flows.file_index, "row_number": flows.row_number,
              "label_codes": flows.label_codes, "roles": data.split.roles,
              "train_idx": data.train_idx, "val_idx": data.val_idx}
    if flows.host_codes is not None:
        arrays["host_codes"] = flows.host_codes
    if flows.timestamp is not None:
        arrays["timestamp"] = flows.timestamp.astype("datetime64[ms]").astype(np.int64)
    np.savez(folder / "flows.npz", **arrays)
    meta = {"files": [str(f) for f in flows.files], "label_names": flows.label_names,
            "feature_names": flows.feature_names, "cuts": list(data.split.cuts),
            "window": data.windows.window, "stride": data.stride, "host_names": flows.host_names,
            "host_windows": data.host_windows}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    data.transform.save(folder / "transform.json")
    return folder


def load_prepared(folder: Path) -> PreparedData:
    """The :class:`PreparedData` that :func:`save_prepared` wrote (``x`` memory-mapped)."""
    folder = Path(folder)
    meta = json.loads((folder / "meta.json").read_text())
    arrays = np.load(folder / "flows.npz")
    x = np.load(folder / "x.npy", mmap_mode="r")
    flows = FlowSet([Path(f) for f in meta["files"]], arrays["file_index"], arrays["row_number"],
                    arrays["label_codes"], list(meta["label_names"]), x, list(meta["feature_names"]),
                    host_codes=arrays.get("host_codes"),
                    host_names=meta.get("host_names"),
                    timestamp=arrays["timestamp"].astype("datetime64[ms]") if "timestamp" in arrays else None)
    split = Split(arrays["roles"], tuple(meta["cuts"]))  # type: ignore[arg-type]
    host_windows = bool(meta.get("host_windows", False))
    windows = build_windows(x, int(meta["window"]), int(meta["stride"]), *window_groups(flows, split, host_windows))
    window_roles = split.roles[windows.starts] if len(windows) else np.zeros(0, np.int8)
    return PreparedData(flows, split, FeatureTransform.load(folder / "transform.json"), windows,
                        window_roles, arrays["train_idx"], arrays["val_idx"], int(meta["stride"]), host_windows)
