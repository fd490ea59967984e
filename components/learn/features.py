"""Model-input features: which contract columns go in, and the benign-fitted scaling applied to them.

Why a signed log1p before a standard scaler: CIC-IDS2017 flow statistics span ten orders of
magnitude (bytes/s, microsecond durations) and a few are negative (``init_win_bytes_* = -1``), so a
plain standard scaler lets a handful of huge flows dominate every reconstruction error.
``sign(x) * log1p(|x|)`` compresses the range while keeping sign and zero.

Non-finite inputs: ``flow_bytes_s`` / ``flow_packets_s`` are ``inf`` or ``NaN`` when a flow lasts
0 µs. Ingest keeps such rows (nothing is lost), so the transform must cope: after the log, every
non-finite value becomes 0 (it is ignored by the fit, which uses finite values only, and at
transform time it is set to 0 in *log* space, i.e. "no information", before scaling).

The transform is persisted as JSON (``to_dict``/``save``), never pickled, so a registered model can
be loaded without executing code.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

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


def log_matrix(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    """float32 [N, F] in log space; non-finite or missing columns -> NaN (the transform decides)."""
    out = np.full((len(frame), len(names)), np.nan, dtype=np.float32)
    for j, name in enumerate(names):
        if name in frame.columns:
            out[:, j] = log_column(pd.to_numeric(frame[name], errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan))
    return out


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
    benign flows cannot stretch)."""

    feature_names: list[str]
    dropped_constant: list[str] = field(default_factory=list)
    center: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    scaler: Scaler = "standard"

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @classmethod
    def fit(cls, frame: pd.DataFrame, feature_names: list[str], scaler: Scaler = "standard"
            ) -> FeatureTransform:
        """Fit on ``frame`` only (the caller passes benign *training* rows)."""
        if len(frame) == 0:
            raise ValueError("FeatureTransform.fit needs at least one row")
        logged = log_matrix(frame, list(feature_names))
        return cls.fit_log(logged, np.ones(len(frame), dtype=bool), list(feature_names), scaler)

    @classmethod
    def fit_log(cls, logged: np.ndarray, rows: np.ndarray, feature_names: list[str],
                scaler: Scaler = "standard") -> FeatureTransform:
        """Fit on the ``rows`` of a log-space matrix, one column at a time (no copy of the matrix).

        Columns constant on those rows (every finite value equal, or no finite value) carry no
        information for an autoencoder trained on them and are dropped and recorded.
        """
        rows = np.asarray(rows, dtype=bool)
        if not rows.any():
            raise ValueError("FeatureTransform.fit needs at least one row")
        keep, dropped, centers, scales = [], [], [], []
        for j, name in enumerate(feature_names):
            col = logged[rows, j]
            col = col[np.isfinite(col)].astype(np.float64)
            if len(col) == 0 or not col.max() > col.min():
                dropped.append(name)
                continue
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
                   np.asarray(scales, dtype=np.float64), scaler)

    def apply_log(self, logged: np.ndarray, names: list[str]) -> np.ndarray:
        """Scale a log-space matrix whose columns are ``names`` *in place*; return the kept columns.

        Kept columns are moved to the front, so the result is a view of ``logged`` (no second
        matrix in memory); NaN (non-finite input) becomes 0 in log space before scaling.
        """
        position = {n: i for i, n in enumerate(names)}
        missing = [n for n in self.feature_names if n not in position]
        if missing:
            raise KeyError(f"frame lacks feature columns: {missing}")
        for j, name in enumerate(self.feature_names):
            col = logged[:, position[name]]
            np.nan_to_num(col, copy=False, nan=0.0)
            col -= np.float32(self.center[j])
            col /= np.float32(self.scale[j])
            if position[name] != j:
                logged[:, j] = col
        return logged[:, : len(self.feature_names)]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """float32 [N, F] in ``feature_names`` order; non-finite inputs become 0 in log space."""
        missing = [n for n in self.feature_names if n not in frame.columns]
        if missing:
            raise KeyError(f"frame lacks feature columns: {missing}")
        logged = log_matrix(frame, self.feature_names)
        return np.ascontiguousarray(self.apply_log(logged, self.feature_names))

    def to_dict(self) -> dict:
        return {
            "kind": f"signed_log1p_{self.scaler}",
            "scaler": self.scaler,
            "feature_names": list(self.feature_names),
            "dropped_constant": list(self.dropped_constant),
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
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> FeatureTransform:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
