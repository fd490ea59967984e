"""When flows happen: a daily rhythm for benign traffic plus constant-rate attack bursts.

Row i of a day of N rows sits at the (i + u)/N quantile of the day's cumulative flow intensity, so
rows are time-ordered by construction and any chunk can be generated on its own. Benign intensity
peaks mid-day; each attack adds a flat intensity over its documented time range, sized so the
attack makes up its expected share of the day. Which class a row belongs to is drawn from the
intensities at its time, so attacks come as contiguous bursts interleaved with benign flows.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from components.synth.specs import ATTACKS, DaySpec

_GRID_S = 1.0  # intensity grid resolution (seconds)


def _seconds(t: dt.time) -> float:
    return t.hour * 3600 + t.minute * 60 + t.second


def benign_rhythm(seconds_of_day: np.ndarray) -> np.ndarray:
    """Relative benign flow rate: a floor plus a bump centred at 12:30 (people at work)."""
    return 0.4 + np.exp(-(((seconds_of_day - 12.5 * 3600) / (2.5 * 3600)) ** 2))


@dataclass(frozen=True)
class Timeline:
    grid: np.ndarray            # seconds of day
    cum: np.ndarray             # cumulative intensity, normalised to [0, 1]
    rates: np.ndarray           # (1 + n_attacks, len(grid)) intensities: benign first
    classes: tuple[str, ...]    # "benign", then attack families

    def times(self, quantiles: np.ndarray) -> np.ndarray:
        """Seconds of day at the given quantiles of the day's flow intensity."""
        return np.interp(quantiles, self.cum, self.grid)

    def draw_classes(self, seconds: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Index into ``classes`` per row, drawn in proportion to the intensities at its time."""
        idx = np.clip(np.searchsorted(self.grid, seconds, side="right") - 1, 0, len(self.grid) - 1)
        r = self.rates[:, idx]
        cdf = np.cumsum(r, axis=0) / r.sum(axis=0)
        return (u[None, :] >= cdf).sum(axis=0).clip(0, len(self.classes) - 1)


def attack_windows(day: DaySpec, attacks: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    """Documented burst of each attack; one not run on this day is placed evenly inside its window."""
    d0, d1 = _seconds(day.start), _seconds(day.end)
    foreign = [a for a in attacks if not d0 <= _seconds(ATTACKS[a].start) < d1]
    out = {}
    for a in attacks:
        s, e = _seconds(ATTACKS[a].start), _seconds(ATTACKS[a].end)
        if a in foreign:
            length = min(e - s, (d1 - d0) / (len(foreign) + 1) / 2)
            s = d0 + (d1 - d0) * (foreign.index(a) + 1) / (len(foreign) + 1)
            e = s + length
        out[a] = (s, min(e, d1))
    return out


def build_timeline(day: DaySpec, attacks: tuple[str, ...]) -> Timeline:
    """Benign rhythm and attack bursts of one day on a one-second grid."""
    d0, d1 = _seconds(day.start), _seconds(day.end)
    grid = np.arange(d0, d1 + _GRID_S, _GRID_S)
    benign = benign_rhythm(grid)
    total_share = sum(ATTACKS[a].share for a in attacks)
    rows = [benign]
    for a, (s, e) in attack_windows(day, attacks).items():
        inside = (grid >= s) & (grid < e)
        level = ATTACKS[a].share * benign.sum() / max(1.0 - total_share, 0.05) / max(inside.sum(), 1)
        rows.append(np.where(inside, level, 0.0))
    rates = np.vstack(rows)
    cum = np.concatenate([[0.0], np.cumsum(rates.sum(axis=0)[:-1])])
    return Timeline(grid=grid, cum=cum / cum[-1], rates=rates, classes=("benign", *attacks))
