"""Generate rows of a synthetic day as a DataFrame with canonical contract column names.

Rows are produced in fixed blocks of ``BLOCK`` rows, each from its own numpy Generator seeded by
(seed, day, block). Any range of rows (a 50k-row write chunk, or what a test asks for) is cut from
the blocks that cover it, so the same seed always gives the same rows whatever the chunking, and
memory never grows with the day's size.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

from components.data.contract import load_contract
from components.synth.attacks import ATTACK_PROFILES
from components.synth.benign import BENIGN_PROFILES
from components.synth.endpoints import draw_endpoints
from components.synth.flowstats import derive_features
from components.synth.profiles import FlowProfile, choice, sample_profile
from components.synth.specs import ATTACK_FAMILIES, ATTACKS, DAYS, LABELS, DaySpec
from components.synth.timeline import Timeline, build_timeline

BLOCK = 10_000
_QUIRK_NAN_OFFSET = 17                 # per block: one zero-byte zero-duration flow (NaN bytes/s)
_QUIRK_INF_OFFSETS = (101, 3001, 7001)  # per block: zero-duration flows (Infinity rates)
_P_ZERO_DURATION = 0.0012              # about the rate of Infinity in the real benign rows

_BENIGN_WEIGHTS = np.array([p.weight for p in BENIGN_PROFILES]) / sum(p.weight for p in BENIGN_PROFILES)


def resolve_attacks(day: DaySpec, attacks: Sequence[str] | None) -> tuple[str, ...]:
    """The day's own families when None; otherwise the given ones ('none' or empty: benign only)."""
    if attacks is None:
        return day.attacks
    names = [a for a in attacks if a and a.lower() != "none"]
    unknown = [a for a in names if a not in ATTACKS]
    if unknown:
        raise ValueError(f"attacks: unknown attack family {unknown[0]!r}; known: {', '.join(ATTACK_FAMILIES)}")
    return tuple(dict.fromkeys(a for a in ATTACK_FAMILIES if a in names))


def day_spec(day: str) -> DaySpec:
    if day not in DAYS:
        raise ValueError(f"day: unknown day {day!r}; known: {', '.join(DAYS)}")
    return DAYS[day]


@lru_cache(maxsize=32)
def _timeline(day: str, attacks: tuple[str, ...]) -> Timeline:
    return build_timeline(DAYS[day], attacks)


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


def _sample_class(rng, prof: FlowProfile, n: int) -> tuple[dict, dict]:
    prims = sample_profile(rng, prof, n)
    ends = draw_endpoints(rng, prof.endpoints, choice(rng, prof.ports, n), n)
    return prims, ends


def _scatter(parts: list[tuple[np.ndarray, dict]], n: int) -> dict[str, np.ndarray]:
    """Merge per-class arrays back into row order."""
    out: dict[str, np.ndarray] = {}
    for mask, arrays in parts:
        for k, v in arrays.items():
            if k not in out:
                out[k] = np.empty(n, dtype=v.dtype if v.dtype != object else object)
            out[k][mask] = v
    return out


def _apply_quirks(prims: dict, benign: np.ndarray, offsets: np.ndarray, u: np.ndarray) -> None:
    """Zero-duration flows (Infinity rates) and one zero-byte one (NaN bytes/s), as in the real files."""
    zero = benign & ((u < _P_ZERO_DURATION) | np.isin(offsets, _QUIRK_INF_OFFSETS + (_QUIRK_NAN_OFFSET,)))
    zero &= prims["nf"] + prims["nb"] >= 2
    nan = benign & (offsets == _QUIRK_NAN_OFFSET) & zero
    for k in ("dur", "fwd_iat_total", "bwd_iat_total", "idle_k"):
        prims[k] = np.where(zero, 0, prims[k])
    for k in ("f_hi", "f_lo", "f_mid", "b_hi", "b_lo", "b_mid"):
        prims[k] = np.where(nan, 0, prims[k])


def _block(seed: int, day: str, attacks: tuple[str, ...], total: int, b: int) -> pd.DataFrame:
    """Rows [b*BLOCK, min((b+1)*BLOCK, total)) of a day of ``total`` rows."""
    day_idx = list(DAYS).index(day)
    r0, r1 = b * BLOCK, min((b + 1) * BLOCK, total)
    n = r1 - r0
    rng = _rng(seed, day_idx, b)
    tl = _timeline(day, attacks)
    seconds = tl.times((np.arange(r0, r1) + rng.random(n)) / total)
    cls = tl.draw_classes(seconds, rng.random(n))
    benign_kind = rng.choice(len(BENIGN_PROFILES), size=n, p=_BENIGN_WEIGHTS)
    parts_p, parts_e, labels = [], [], np.empty(n, dtype=object)
    groups = [(cls == 0) & (benign_kind == i) for i in range(len(BENIGN_PROFILES))]
    profiles = list(BENIGN_PROFILES)
    for j, a in enumerate(attacks, start=1):
        groups.append(cls == j)
        profiles.append(ATTACK_PROFILES[a])
    for g, (mask, prof) in enumerate(zip(groups, profiles)):
        if mask.any():
            prims, ends = _sample_class(_rng(seed, day_idx, b, 1000 + g), prof, int(mask.sum()))
            parts_p.append((mask, prims))
            parts_e.append((mask, ends))
        labels[mask] = LABELS[prof.name] if prof.name in LABELS else LABELS["benign"]
    prims, ends = _scatter(parts_p, n), _scatter(parts_e, n)
    _apply_quirks(prims, cls == 0, np.arange(r0, r1) - r0, rng.random(n))
    return _assemble(DAYS[day], seconds, prims, ends, labels)


def _assemble(day: DaySpec, seconds: np.ndarray, prims: dict, ends: dict, labels: np.ndarray) -> pd.DataFrame:
    """Canonical columns in contract order: identifiers, timestamp, features (float64), label."""
    feats = derive_features(prims)
    proto = prims["proto"].astype(np.int64)
    src, dst = ends["source_ip"], ends["destination_ip"]
    sport, dport = ends["source_port"].astype(np.int64), ends["destination_port"].astype(np.int64)
    flow_id = [f"{a}-{b}-{c}-{d}-{e}" for a, b, c, d, e in zip(src, dst, sport, dport, proto)]
    stamp = (np.datetime64(day.date, "s") + np.floor(seconds).astype("timedelta64[s]"))
    cols = {
        "flow_id": pd.array(flow_id, dtype="str"), "source_ip": pd.array(src, dtype="str"), "source_port": sport,
        "destination_ip": pd.array(dst, dtype="str"), "destination_port": dport, "protocol": proto,
        "timestamp": stamp,
        **feats,
        "label": pd.array(labels, dtype="str"),
    }
    names = load_contract().names()
    return pd.DataFrame({k: cols[k] for k in names})


def iter_blocks(rows: int, seed: int, day: str, attacks: tuple[str, ...], start_row: int = 0,
                stop_row: int | None = None, total_rows: int | None = None) -> Iterator[pd.DataFrame]:
    """Yield the rows [start_row, stop_row) of a day of ``total_rows`` rows, one block at a time."""
    total = total_rows if total_rows is not None else start_row + rows
    stop = min(stop_row if stop_row is not None else start_row + rows, total)
    for b in range(start_row // BLOCK, (max(stop, 1) - 1) // BLOCK + 1):
        frame = _block(seed, day, attacks, total, b)
        lo, hi = max(start_row - b * BLOCK, 0), min(stop - b * BLOCK, len(frame))
        if hi > lo:
            yield frame.iloc[lo:hi]


def synth_frame(rows: int, seed: int = 0, day: str = "friday_ddos", attacks: Sequence[str] | None = None,
                start_row: int = 0, total_rows: int | None = None) -> pd.DataFrame:
    """Rows [start_row, start_row + rows) of a synthetic day, with canonical contract columns.

    The day holds ``total_rows`` rows (default ``start_row + rows``, i.e. this chunk ends the day), spread
    over the day's working window. ``attacks`` None injects the day's own families; 'none'/[] none.
    Features are float64, identifiers int64/str, timestamp datetime64, labels normalised.
    """
    if rows < 0 or start_row < 0:
        raise ValueError("rows: must be >= 0 (and start_row >= 0)")
    spec = day_spec(day)
    fams = resolve_attacks(spec, attacks)
    parts = list(iter_blocks(rows, seed, spec.key, fams, start_row, total_rows=total_rows))
    if not parts:
        return _block(seed, spec.key, fams, 1, 0).iloc[:0]
    return pd.concat(parts, ignore_index=True)
