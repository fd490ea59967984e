"""Sliding windows of consecutive flows and benign-only masks (the time split is ``learn.split``).

Why windows: the sequence models (EncDec-AD style LSTM autoencoders) see T consecutive flows, so an
attack shows up as a window they cannot reconstruct. Everything here is vectorised: windows are
``numpy`` strided *views* of the [N, F] feature matrix (no copy of the N*T*F data), and float32
copies are made one batch at a time in :func:`iter_batches` / :meth:`Windows.take`.

Layout: a :class:`Windows` keeps a *backing* array ``base`` [N, F] (``x`` itself, or ``x`` stably
re-ordered by group when ``groups`` is given) and, per window, the row in ``base`` where it starts
(``positions``) plus the flow index of its first flow in the ordered frame (``starts``).
``order[i]`` is the ordered-frame flow index of backing row ``i`` (``None`` = identity).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import as_strided, sliding_window_view


def window_starts(n_rows: int, window: int, stride: int) -> np.ndarray:
    """First row of every full window: 0, stride, 2*stride, ... while the window fits."""
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1 (got window={window}, stride={stride})")
    if n_rows < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_rows - window + 1, stride, dtype=np.int64)


def sliding_windows(x: np.ndarray, window: int, stride: int) -> np.ndarray:
    """[W, T, F] strided view of ``x`` [N, F] (shares memory with ``x``; read-only)."""
    if x.ndim != 2:
        raise ValueError(f"expected x of shape [N, F], got {x.shape}")
    n_windows = len(window_starts(len(x), window, stride))
    if n_windows == 0:
        return np.zeros((0, window, x.shape[1]), dtype=x.dtype)
    rs, cs = x.strides
    return as_strided(x, shape=(n_windows, window, x.shape[1]), strides=(rs * stride, rs, cs), writeable=False)


@dataclass
class Windows:
    """Windows over a backing [N, F] array; see the module docstring for the fields."""

    base: np.ndarray
    positions: np.ndarray
    starts: np.ndarray
    window: int
    order: np.ndarray | None = None
    step: int | None = None  # known constant spacing of ``positions`` (windows without groups)

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def n_features(self) -> int:
        return self.base.shape[1]

    @property
    def n_flows(self) -> int:
        return len(self.base)

    def _regular_step(self) -> int | None:
        """The constant spacing of ``positions`` (so a single strided view exists), else None."""
        p = self.positions
        if len(p) <= 1:
            return 1
        if self.step is not None:
            return self.step
        d = np.diff(p)
        return int(d[0]) if d[0] > 0 and np.all(d == d[0]) else None

    @property
    def values(self) -> np.ndarray:
        """[W, T, F]: a strided view when the windows are evenly spaced (always without groups).

        With ``groups`` the spacing is irregular and this gathers a copy; prefer :meth:`take` or
        :func:`iter_batches` on large data.
        """
        step = self._regular_step()
        if step is not None:
            if len(self.positions) == 0:
                return np.zeros((0, self.window, self.n_features), dtype=self.base.dtype)
            rs, cs = self.base.strides
            first = self.base[int(self.positions[0]):]
            return as_strided(
                first, shape=(len(self), self.window, self.n_features),
                strides=(rs * step, rs, cs), writeable=False,
            )
        return self.take(np.arange(len(self)), dtype=self.base.dtype)

    def take(self, indices: np.ndarray, dtype=np.float32) -> np.ndarray:
        """A contiguous copy [len(indices), T, F] of the selected windows."""
        view = sliding_window_view(self.base, self.window, axis=0)  # [N-T+1, F, T] view
        batch = view[self.positions[np.asarray(indices, dtype=np.int64)]].transpose(0, 2, 1)
        return np.ascontiguousarray(batch, dtype=dtype)

    def flow_index(self) -> np.ndarray:
        """[W, T] ordered-frame flow index of every flow of every window (for per-flow scores)."""
        rows = self.positions[:, None] + np.arange(self.window)[None, :]
        return rows if self.order is None else self.order[rows]

    @property
    def ends(self) -> np.ndarray:
        """Ordered-frame flow index of each window's last flow."""
        last = self.positions + self.window - 1
        return last if self.order is None else self.order[last]

    def _in_backing_order(self, per_flow: np.ndarray) -> np.ndarray:
        per_flow = np.asarray(per_flow)
        if len(per_flow) != self.n_flows:
            raise ValueError(f"expected {self.n_flows} per-flow values, got {len(per_flow)}")
        return per_flow if self.order is None else per_flow[self.order]


def build_windows(x: np.ndarray, window: int, stride: int, groups: np.ndarray | None = None,
                  within: np.ndarray | None = None) -> Windows:
    """Windows of ``window`` consecutive flows every ``stride`` flows of ``x`` [N, F].

    With ``groups`` (one key per flow: the file and split segment, or e.g. the source IP) a window
    only holds flows of one group, and windows start every ``stride`` flows from the start of each
    group. Groups that are contiguous runs (the default: files and split segments) need no copy;
    interleaved groups are stably sorted first (time order kept inside each group; one copy of x).
    ``within`` (e.g. timestamps) orders the flows inside each group first (ties keep their order).
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"expected x of shape [N, F], got {x.shape}")
    if groups is None:
        pos = window_starts(len(x), window, stride)
        pos.flags.writeable = False  # shared by positions and starts (they are equal here)
        return Windows(base=x, positions=pos, starts=pos, window=window, order=None, step=stride)

    groups = np.asarray(groups)
    if len(groups) != len(x):
        raise ValueError(f"groups has {len(groups)} entries for {len(x)} flows")
    codes, _ = pd.factorize(groups, use_na_sentinel=False)
    changes = np.flatnonzero(codes[1:] != codes[:-1]) if len(x) else np.zeros(0, np.int64)
    if within is not None and len(x):
        order = np.lexsort((np.arange(len(x)), np.asarray(within), codes))
        sorted_codes = codes[order]
        base = x[order]
    elif len(changes) == (codes.max() if len(x) else 0):
        # every group is one contiguous run (files, split segments): windows are views of x itself
        order, sorted_codes, base = None, codes, x
    else:
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        base = x[order]
    # offset of each backing row inside its group
    first_of_group = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]] if len(x) else np.zeros(0, bool)
    group_start = np.maximum.accumulate(np.where(first_of_group, np.arange(len(x)), 0))
    offset = np.arange(len(x)) - group_start
    group_len = np.bincount(sorted_codes, minlength=int(codes.max()) + 1 if len(x) else 0)
    length_of_row = group_len[sorted_codes] if len(x) else np.zeros(0, np.int64)
    is_start = (offset % stride == 0) & (offset + window <= length_of_row)
    pos = np.flatnonzero(is_start).astype(np.int64)
    if order is None:
        return Windows(base=base, positions=pos, starts=pos.copy(), window=window, order=None)
    # time order of windows: by the ordered-frame index of their first flow
    starts = order[pos]
    by_time = np.argsort(starts, kind="stable")
    return Windows(base=base, positions=pos[by_time], starts=starts[by_time], window=window, order=order)


def _window_sums(per_flow_backing: np.ndarray, windows: Windows) -> np.ndarray:
    """Sum of a per-flow quantity over each window (cumsum trick, no loop over rows)."""
    n = len(per_flow_backing)
    cs = np.empty(n + 1, dtype=np.int32 if n < 2**31 - 1 else np.int64)
    cs[0] = 0
    np.cumsum(per_flow_backing, dtype=cs.dtype, out=cs[1:])
    p, step = windows.positions, windows.step
    if step is not None and len(p):  # evenly spaced: two strided views, no gather
        first, count = int(p[0]), len(p)
        return cs[first + windows.window::step][:count] - cs[first::step][:count]
    return cs[p + windows.window] - cs[p]


def benign_window_mask(is_benign: np.ndarray, windows: Windows) -> np.ndarray:
    """True for windows whose every flow is benign."""
    flags = windows._in_backing_order(np.asarray(is_benign, dtype=bool))
    return _window_sums(flags, windows) == windows.window


def iter_batches(
    windows: Windows, indices: np.ndarray, batch_size: int, shuffle: bool, seed: int
) -> Iterator[np.ndarray]:
    """float32 [B, T, F] copies of the selected windows, one batch at a time."""
    indices = np.asarray(indices, dtype=np.int64)
    if shuffle:
        indices = np.random.default_rng(seed).permutation(indices)
    for lo in range(0, len(indices), batch_size):
        yield windows.take(indices[lo:lo + batch_size])
