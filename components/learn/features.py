"""Model-input features: which contract columns go in, and the benign-fitted scaling applied to them.

Why a signed log1p before a standard scaler: CIC-IDS2017 flow statistics span ten orders of
magnitude (bytes/s, microsecond durations) and a few are negative (``init_win_bytes_* = -1``), so a
plain standard scaler lets a handful of huge flows dominate every reconstruction error.
``sign(x) * log1p(|x|)`` compresses the range while keeping sign and zero.

Unusable inputs: ``flow_bytes_s`` / ``flow_packets_s`` are ``inf`` or ``NaN`` when a flow lasts
0 µs, and a night's file may lack an optional column. Scoring keeps such rows with the value null
(``casting.value_checks``), and so does ingest under its default policy (``invalid_values: keep``;
``quarantine`` sets them aside, ``impute`` fills a median); here a null, non-finite or absent input
is "no information": it takes the benign centre, 0 *after* scaling (the fit ignores it). Setting it to 0
in log space instead put it ``-center/scale`` standard deviations away and flagged every row of a
file without one optional column.

Which columns go in is decided at fit time on the benign training flows: a column constant there,
or an exact duplicate of an earlier one (``fwd_header_length_1`` repeats ``fwd_header_length``),
carries nothing and is dropped; both lists are recorded with the transform.

The transform is persisted as JSON (``to_dict``/``save``), never pickled: reading it runs no code.
(The MLflow pyfunc that wraps a detector does run its stored code when loaded: ``serve/pyfunc_model``.)
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from components.data.contract import Contract, load_contract

#: Never a model input, whatever the contract says: the destination port alone separates the
#: CIC-IDS2017 classes (D'hooge et al. 2022), so feeding it is label leakage.
ALWAYS_EXCLUDED: frozenset[str] = frozenset({"destination_port"})

#: A standard deviation below this is treated as this, so no column divides by ~0.
SCALE_FLOOR = 1e-6


def select_features(
    columns: Iterable[str], contract: Contract | None = None, exclude: Iterable[str] = ()
) -> list[str]:
    """Contract feature-role columns present in ``columns``, in contract order.

    Identifiers (flow id, IPs, ports, protocol), the timestamp and the label are never returned:
    only role ``feature`` qualifies, and ``destination_port`` is excluded explicitly as well in case
    a contract edit ever re-labels it as a feature.
    """
    contract = contract or load_contract()
    present = set(columns)
    excluded = set(exclude) | ALWAYS_EXCLUDED
    return [
        name
        for name in contract.feature_names
        if name in present and name not in excluded and contract.by_name[name].role == "feature"
    ]


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """``sign(x) * log1p(|x|)``: monotone, odd, 0 -> 0; non-finite values pass through."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.sign(x) * np.log1p(np.abs(x))


def log_features(rows: pa.Table | pa.RecordBatch | pd.DataFrame, names: list[str]) -> np.ndarray:
    """float32 [N, F] signed-log of the named columns of typed rows (canonical names); NaN where a
    value is null or not finite, or the column is absent: the transform decides what NaN becomes.

    This is the one place where rows become model inputs: training (``dataset.load_flows``),
    calibration and evaluation (the same), the pyfunc (``Detector.scale``) and batch scoring
    (``scoring``) all call it, on rows typed by the same casting and value rule.
    """
    table = pa.Table.from_pandas(rows, preserve_index=False) if isinstance(rows, pd.DataFrame) else rows
    out = np.full((table.num_rows, len(names)), np.nan, dtype=np.float32)
    present = set(table.column_names)
    for j, name in enumerate(names):
        if name in present:
            out[:, j] = log_column(_float64(table.column(name)))
    return out


def _float64(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A numeric column as float64 with NaN for nulls (int64 beyond 2**53 rounds, as everywhere)."""
    values = pc.cast(column, pa.float64())
    if values.null_count:
        values = pc.fill_null(values, np.nan)
    return np.asarray(values)


def log_column(values: np.ndarray) -> np.ndarray:
    """One raw column (float64) -> signed log1p as float32, NaN where not finite."""
    logged = signed_log1p(values)
    logged[~np.isfinite(logged)] = np.nan
    return logged.astype(np.float32)


Scaler = Literal["standard", "robust"]


@dataclass
class FeatureTransform:
    """Signed log1p, then centre/scale fitted on benign training rows (``standard``: mean and
    standard deviation; ``robust``: median and inter-quartile range / 1.349, which a few extreme
    benign flows cannot stretch). A missing value becomes the centre."""

    feature_names: list[str]
    dropped_constant: list[str] = field(default_factory=list)
    center: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    scaler: Scaler = "standard"
    dropped_duplicate: dict[str, str] = field(default_factory=dict)  # dropped -> the column it repeats

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def dropped(self) -> list[str]:
        """Every candidate column that is not a model input, constant or duplicate."""
        return [*self.dropped_constant, *self.dropped_duplicate]

    @classmethod
    def fit_log(cls, logged: np.ndarray, rows: np.ndarray, feature_names: list[str],
                scaler: Scaler = "standard") -> FeatureTransform:
        """Fit on the ``rows`` of a log-space matrix, one column at a time (no copy of the matrix).

        Columns constant on those rows (every finite value equal, or no finite value) and exact
        duplicates of an earlier kept column (same values, same gaps) are dropped and recorded.
        """
        rows = np.asarray(rows, dtype=bool)
        if not rows.any():
            raise ValueError("FeatureTransform.fit_log needs at least one row")
        keep, dropped, centers, scales = [], [], [], []
        duplicates: dict[str, str] = {}
        seen: dict[bytes, list[int]] = {}  # digest of a kept column's values -> its positions
        for j, name in enumerate(feature_names):
            full = logged[rows, j]
            col = full[np.isfinite(full)].astype(np.float64)
            if len(col) == 0 or not col.max() > col.min():
                dropped.append(name)
                continue
            digest = _digest(full)
            same = [k for k in seen.get(digest, []) if np.array_equal(full, logged[rows, k], equal_nan=True)]
            if same:
                duplicates[name] = feature_names[same[0]]
                continue
            seen.setdefault(digest, []).append(j)
            if scaler == "robust":
                q1, med, q3 = np.percentile(col, [25, 50, 75])
                centre, spread = med, (q3 - q1) / 1.349
                if not spread > SCALE_FLOOR:  # mostly one value: fall back to the std
                    spread = col.std()
            else:
                centre, spread = col.mean(), col.std()
            keep.append(name)
            centers.append(centre)
            scales.append(max(float(spread), SCALE_FLOOR))
        return cls(keep, dropped, np.asarray(centers, dtype=np.float64),
                   np.asarray(scales, dtype=np.float64), scaler, duplicates)

    def apply_log(self, logged: np.ndarray, names: list[str]) -> np.ndarray:
        """Scale a log-space matrix whose columns are ``names`` *in place*; return the kept columns.

        Kept columns are moved to the front, so the result is a view of ``logged`` (no second
        matrix in memory). NaN (null, non-finite or absent input) becomes 0 *after* scaling: the
        benign centre, never a value many deviations away.
        """
        position = {n: i for i, n in enumerate(names)}
        missing = [n for n in self.feature_names if n not in position]
        if missing:
            raise KeyError(f"matrix lacks feature columns: {missing}")
        for j, name in enumerate(self.feature_names):
            col = logged[:, position[name]]
            col -= np.float32(self.center[j])
            col /= np.float32(self.scale[j])
            np.nan_to_num(col, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            if position[name] != j:
                logged[:, j] = col
        return logged[:, : len(self.feature_names)]

    def scale_rows(self, rows: pa.Table | pd.DataFrame) -> np.ndarray:
        """Typed rows (canonical names) -> the scaled float32 [N, F] model input, C-contiguous."""
        logged = log_features(rows, self.feature_names)
        return np.ascontiguousarray(self.apply_log(logged, self.feature_names))

    def to_dict(self) -> dict:
        return {
            "kind": f"signed_log1p_{self.scaler}",
            "scaler": self.scaler,
            "feature_names": list(self.feature_names),
            "dropped_constant": list(self.dropped_constant),
            "dropped_duplicate": dict(self.dropped_duplicate),
            "center": [float(v) for v in self.center],
            "scale": [float(v) for v in self.scale],
        }

    @classmethod
    def from_dict(cls, d: dict) -> FeatureTransform:
        return cls(
            feature_names=list(d["feature_names"]),
            dropped_constant=list(d.get("dropped_constant", [])),
            center=np.asarray(d["center"], dtype=np.float64),
            scale=np.asarray(d["scale"], dtype=np.float64),
            scaler=d.get("scaler", "standard"),
            dropped_duplicate=dict(d.get("dropped_duplicate", {})),
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> FeatureTransform:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _digest(values: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(values).tobytes(), digest_size=16).digest()

