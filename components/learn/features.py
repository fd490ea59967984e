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


def _log_matrix(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    """float64 [N, F] in log space; non-finite -> NaN so the caller decides what to do."""
    raw = frame[names].to_numpy(dtype=np.float64, na_value=np.nan)
    out = signed_log1p(raw)
    out[~np.isfinite(out)] = np.nan
    return out


@dataclass
class FeatureTransform:
    """Signed log1p, then standardisation with centre/scale fitted on benign training rows."""

    feature_names: list[str]
    dropped_constant: list[str] = field(default_factory=list)
    center: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scale: np.ndarray = field(default_factory=lambda: np.ones(0))

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @classmethod
    def fit(cls, frame: pd.DataFrame, feature_names: list[str]) -> FeatureTransform:
        """Fit on ``frame`` only (the caller passes benign *training* rows).

        Columns constant on that data (every finite value equal, or no finite value) carry no
        information for an autoencoder trained on it and are dropped and recorded.
        """
        if len(frame) == 0:
            raise ValueError("FeatureTransform.fit needs at least one row")
        logged = _log_matrix(frame, list(feature_names))
        with np.errstate(invalid="ignore"):
            lo = np.nanmin(np.where(np.isnan(logged), np.inf, logged), axis=0)
            hi = np.nanmax(np.where(np.isnan(logged), -np.inf, logged), axis=0)
        constant = ~(hi > lo)  # also true when a column has no finite value
        keep = [n for n, c in zip(feature_names, constant) if not c]
        dropped = [n for n, c in zip(feature_names, constant) if c]
        kept = logged[:, ~constant]
        center = np.nanmean(kept, axis=0) if kept.shape[1] else np.zeros(0)
        scale = np.nanstd(kept, axis=0) if kept.shape[1] else np.ones(0)
        scale = np.maximum(scale, SCALE_FLOOR)
        return cls(keep, dropped, center.astype(np.float64), scale.astype(np.float64))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """float32 [N, F] in ``feature_names`` order; non-finite inputs become 0 in log space."""
        missing = [n for n in self.feature_names if n not in frame.columns]
        if missing:
            raise KeyError(f"frame lacks feature columns: {missing}")
        logged = _log_matrix(frame, self.feature_names)
        logged = np.nan_to_num(logged, nan=0.0)
        return ((logged - self.center) / self.scale).astype(np.float32)

    def to_dict(self) -> dict:
        return {
            "kind": "signed_log1p_standard",
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
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> FeatureTransform:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
