"""Write synthetic day files exactly as the published ones look: header, number format, encoding.

CSV: the variant's raw header (leading spaces, ``Fwd Header Length`` twice), integers without
``.0``, other numbers with 10 significant digits (``666666.6667``), ``Infinity``/``NaN``, timestamps
``d/m/yyyy h:mm``, CRLF lines for MachineLearningCVE (as the original files), and cp1252 bytes so
web-attack labels carry the 0x96 dash. Parquet: typed columns named as pandas reads the real CSV
(duplicate saved as `` Fwd Header Length.1``). Both stream chunk by chunk.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.data.contract import load_contract
from components.progress import progress_bar
from components.synth.frame import iter_blocks, resolve_attacks
from components.synth.specs import ATTACK_FAMILIES, DAYS, LABELS, RAW_LABELS

VARIANTS = ("MachineLearningCVE", "TrafficLabelling")
FORMATS = ("csv", "parquet")
CHUNK = 50_000
ENCODING = "cp1252"
LINE_END = {"MachineLearningCVE": "\r\n", "TrafficLabelling": "\n"}

# Features that the real files store as integers (pandas reads them as int64); the rest are floats.
FLOAT_FEATURES = frozenset({
    "fwd_packet_length_mean", "fwd_packet_length_std", "bwd_packet_length_mean", "bwd_packet_length_std",
    "flow_bytes_s", "flow_packets_s", "flow_iat_mean", "flow_iat_std", "fwd_iat_mean", "fwd_iat_std",
    "bwd_iat_mean", "bwd_iat_std", "fwd_packets_s", "bwd_packets_s", "packet_length_mean", "packet_length_std",
    "packet_length_variance", "average_packet_size", "avg_fwd_segment_size", "avg_bwd_segment_size",
    "active_mean", "active_std", "idle_mean", "idle_std",
})
_RAW_BY_LABEL = {LABELS[k]: RAW_LABELS[k] for k in LABELS}


def _split(values: Sequence[str] | None) -> list[str] | None:
    """Accept repeated options and comma-separated lists alike."""
    if values is None:
        return None
    return [v.strip() for item in values for v in str(item).split(",") if v.strip()]


@dataclass(frozen=True)
class SynthConfig:
    """What to generate; invalid values raise ValueError naming the field."""

    rows: int = 10_000
    seed: int = 0
    variant: str = "MachineLearningCVE"
    format: str = "csv"
    attacks: list[str] | None = None
    days: list[str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.rows, int) or self.rows < 1:
            raise ValueError(f"rows: must be a positive integer, got {self.rows!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed: must be a non-negative integer, got {self.seed!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant: unknown variant {self.variant!r}; expected one of {', '.join(VARIANTS)}")
        if self.format not in FORMATS:
            raise ValueError(f"format: unknown format {self.format!r}; expected one of {', '.join(FORMATS)}")
        attacks, days = _split(self.attacks), _split(self.days)
        for a in attacks or []:
            if a.lower() != "none" and a not in ATTACK_FAMILIES:
                raise ValueError(f"attacks: unknown attack family {a!r}; known: {', '.join(ATTACK_FAMILIES)}")
        for d in days or []:
            if d not in DAYS:
                raise ValueError(f"days: unknown day {d!r}; known: {', '.join(DAYS)}")
        object.__setattr__(self, "attacks", attacks)
        object.__setattr__(self, "days", days)

    def day_attacks(self, day: str) -> tuple[str, ...]:
        """A day's own families, restricted to the requested ones (Monday stays benign)."""
        spec = DAYS[day]
        if self.attacks is None:
            return spec.attacks
        return tuple(a for a in resolve_attacks(spec, self.attacks) if a in spec.attacks)


def raw_columns(variant: str) -> list[str]:
    """The published header of a variant (duplicates as in the file)."""
    return list(load_contract().variants[variant])


def _canonical_columns(variant: str) -> list[str]:
    return [c for c in load_contract().resolve_header(raw_columns(variant))]


def pandas_columns(variant: str) -> list[str]:
    """Column names pandas gives the real CSV: the second duplicate gets ``.1``."""
    seen: dict[str, int] = {}
    out = []
    for c in raw_columns(variant):
        out.append(c if c not in seen else f"{c}.{seen[c]}")
        seen[c] = seen.get(c, 0) + 1
    return out


def format_timestamp(ts: pd.Series) -> np.ndarray:
    """d/m/yyyy h:mm without leading zeros, on the published files' 12-hour clock without AM/PM
    (15:30 is written ``3:30``; the contract's ``twelve_hour_clock`` reads it back as 15:30)."""
    t = pd.DatetimeIndex(ts)
    hours = (t.hour + 11) % 12 + 1
    return np.array([f"{d}/{m}/{y} {h}:{mi:02d}" for d, m, y, h, mi in zip(t.day, t.month, t.year, hours, t.minute)],
                    dtype=object)


def format_float(values: np.ndarray) -> np.ndarray:
    """10 significant digits, no trailing zeros, Infinity/NaN spelled as in the originals."""
    v = np.asarray(values, dtype=np.float64) + 0.0
    out = np.char.mod("%.10g", v).astype(object)
    out[np.isposinf(v)] = "Infinity"
    out[np.isneginf(v)] = "-Infinity"
    out[np.isnan(v)] = "NaN"
    return out


def to_raw_frame(frame: pd.DataFrame, variant: str, for_csv: bool) -> pd.DataFrame:
    """Canonical frame -> the variant's columns in file order, values as the file stores them."""
    data = {}
    for pos, (raw, canon) in enumerate(zip(pandas_columns(variant), _canonical_columns(variant))):
        col = frame[canon]
        if canon == "timestamp":
            data[raw] = format_timestamp(col)
        elif canon == "label":
            data[raw] = col.map(_RAW_BY_LABEL).fillna(col).to_numpy(dtype=object)
        elif canon in FLOAT_FEATURES:
            data[raw] = format_float(col.to_numpy()) if for_csv else col.to_numpy(dtype=np.float64)
        elif col.dtype.kind == "f":
            data[raw] = col.to_numpy().astype(np.int64)
        else:
            data[raw] = col.to_numpy()
    return pd.DataFrame(data)


def _write_csv(chunks: Iterator[pd.DataFrame], path: Path, variant: str) -> None:
    eol = LINE_END[variant]
    with open(path, "w", encoding=ENCODING, newline="") as fh:
        fh.write(",".join(raw_columns(variant)) + eol)
        for chunk in chunks:
            to_raw_frame(chunk, variant, for_csv=True).to_csv(fh, header=False, index=False, lineterminator=eol)


def _write_parquet(chunks: Iterator[pd.DataFrame], path: Path, variant: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for chunk in chunks:
            table = pa.Table.from_pandas(to_raw_frame(chunk, variant, for_csv=False), preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()


def iter_day_chunks(cfg: SynthConfig, day: str, chunk_rows: int = CHUNK) -> Iterator[pd.DataFrame]:
    """A day's rows as canonical frames of at most ``chunk_rows`` rows, generated lazily."""
    attacks = cfg.day_attacks(day)
    for start in range(0, cfg.rows, chunk_rows):
        stop = min(start + chunk_rows, cfg.rows)
        parts = list(iter_blocks(stop - start, cfg.seed, day, attacks, start, stop, total_rows=cfg.rows))
        yield pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def _progress(chunks: Iterator[pd.DataFrame], total: int, desc: str, enabled: bool) -> Iterator[pd.DataFrame]:
    with progress_bar(total, desc, " rows", enabled=enabled, leave=True) as bar:
        for chunk in chunks:
            yield chunk
            bar.update(len(chunk))


def write_days(cfg: SynthConfig, out: Path, progress: bool = False) -> Iterator[Path]:
    """Write one file per day, OUT/<real stem>.csv|.parquet, and yield each path once it is complete."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    writer = _write_csv if cfg.format == "csv" else _write_parquet
    for day in cfg.days or list(DAYS):
        path = out / f"{DAYS[day].stem}.{cfg.format}"
        chunks = _progress(iter_day_chunks(cfg, day), cfg.rows, DAYS[day].stem, progress)
        writer(chunks, path, cfg.variant)
        yield path
