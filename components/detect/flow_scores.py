"""Every flow gets one score from the windows that cover it, streaming, with nothing dropped.

The rule (stored with every model, ``FlowRule``):
- windows of T consecutive flows of one file start every ``stride`` flows (default T: each flow is
  covered once, which is T times cheaper than stride 1), and one last window ends at the file's
  last flow, so the last flows are covered too;
- a file shorter than one window is padded at the front with copies of its first flow; the
  copies are scored but never reported;
- a flow's score is the ``mean`` (or ``max``) over its covering windows of the flow's *own*
  step score in that window (the model's ``flow_scores``: squared reconstruction error of that
  flow, or the family's own rule), not the window's score: a window-mean score lets one odd
  flow hide among normal neighbours;
- a flow's per-feature error is the mean over its covering windows; its top features are the
  ones with the largest error (for a model without per-feature errors, the largest scaled
  deviation from the benign centre).

Streaming: :meth:`FlowScorer.feed` takes any slice of a file's flows and returns the flows whose
score is final; :meth:`FlowScorer.finish` returns the rest. Feeding a file in one piece or in
many gives the same scores (the same windows are scored; only floating-point summation order in
the model's batched kernels may differ, at the 1e-6 relative level).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from components.jobs import FlowRule
from components.learn.models import score_array

TOP_K = 3


@dataclass
class ScoredFlows:
    """Scores of consecutive flows of one file; ``first`` is the index of the first of them."""

    first: int
    scores: np.ndarray  # float64 [n]
    top_features: np.ndarray  # int16 [n, k] into the model's feature names
    feature_errors: np.ndarray | None = None  # float32 [n, F] when asked for
    window_scores: np.ndarray | None = None  # float32 [w] windows that started in this piece
    window_starts: np.ndarray | None = None  # int64 [w] file index of each one's first flow

    def __len__(self) -> int:
        return len(self.scores)

    @staticmethod
    def concat(parts: list[ScoredFlows]) -> ScoredFlows:
        parts = [p for p in parts if len(p) or (p.window_scores is not None and len(p.window_scores))]
        if not parts:
            return ScoredFlows(0, np.zeros(0), np.zeros((0, TOP_K), np.int16), None,
                               np.zeros(0, np.float32), np.zeros(0, np.int64))
        errs = [p.feature_errors for p in parts]
        return ScoredFlows(
            first=parts[0].first,
            scores=np.concatenate([p.scores for p in parts]),
            top_features=np.concatenate([p.top_features for p in parts]),
            feature_errors=np.concatenate(errs) if all(e is not None for e in errs) else None,
            window_scores=np.concatenate([p.window_scores for p in parts]),
            window_starts=np.concatenate([p.window_starts for p in parts]),
        )


FlowScoreFn = Callable[..., np.ndarray]  # (feature errors, own scores, scaled inputs) -> scores


class FlowScorer:
    """Scores one file's flows (already scaled, float32 [n, F]) as they stream in."""

    def __init__(self, model, window: int, rule: FlowRule, flow_score_fn: FlowScoreFn | None = None,
                 keep_feature_errors: bool = False, batch_size: int = 4096, device: str = "cpu",
                 start: int = 0) -> None:
        """``start``: the file index of the first flow fed, for scoring one part of a file (window
        starts stay aligned to the whole file's: 0, stride, 2 * stride, ...)."""
        self.model = model
        self.window = int(window)
        self.stride = rule.stride_for(self.window)
        self.use_max = rule.aggregate == "max"
        self.flow_score_fn = flow_score_fn
        self.keep = keep_feature_errors or flow_score_fn is not None
        self.return_errors = keep_feature_errors
        self.batch_size = batch_size
        self.device = device
        self.by_deviation = not getattr(model, "has_feature_errors", True)
        self._x = np.zeros((0, 0), np.float32)  # flows from ``_base`` on, not yet final
        self._base = start  # file index of the first row in ``_x`` and in the accumulators
        self._seen = start
        self._next_start = -(-start // self.stride) * self.stride
        self._last_start = -1
        self._score = np.zeros(0)
        self._count = np.zeros(0)
        self._feat = np.zeros((0, 0), np.float32)

    # --- public ------------------------------------------------------------------------------
    def feed(self, x: np.ndarray) -> ScoredFlows:
        """Add the next flows of the file; returns the flows whose score can no longer change."""
        x = np.asarray(x, dtype=np.float32)
        if self._x.shape[1] == 0:
            self._x = np.zeros((0, x.shape[1]), np.float32)
            self._feat = np.zeros((0, x.shape[1]), np.float32)
        self._append(x)
        starts = np.arange(self._next_start, self._seen - self.window + 1, self.stride, dtype=np.int64)
        ws = self._score_windows(starts)
        if len(starts):
            self._next_start = int(starts[-1]) + self.stride
            self._last_start = int(starts[-1])
        # final: no later regular window (start >= next_start) nor the closing one (start >= seen - T)
        done_upto = min(self._next_start, self._seen - self.window)
        return self._emit(max(done_upto, self._base), *ws)

    def finish(self) -> ScoredFlows:
        """The end of the file: the closing window, the padding of a short file, the last flows."""
        n = self._seen
        if n == 0:
            return self._emit(0, np.zeros(0, np.float32), np.zeros(0, np.int64))
        if n < self.window:  # shorter than one window: pad the front with its first flow
            pad = self.window - n
            padded = np.concatenate([np.repeat(self._x[:1], pad, axis=0), self._x])
            scores, errors, window_scores = self._run_model(padded[None])
            for t in range(pad, self.window):
                self._accumulate_step(np.asarray([t - pad]), scores[:, t], errors[:, t])
            return self._emit(n, window_scores, np.asarray([-pad], np.int64))
        starts = np.zeros(0, np.int64)
        if self._last_start != n - self.window:
            starts = np.asarray([n - self.window], np.int64)
        return self._emit(n, *self._score_windows(starts))

    def emit_until(self, upto: int) -> ScoredFlows:
        """Hand out flows before ``upto`` whose covering windows were all fed (a part of a file
        that ends before the file does: the caller fed ``window - 1`` flows past ``upto``)."""
        if self._next_start < upto:  # a window covering a flow before ``upto`` is still to come
            raise ValueError("emit_until needs the window - 1 flows after the part to be fed first")
        return self._emit(upto, np.zeros(0, np.float32), np.zeros(0, np.int64))

    def score_all(self, x: np.ndarray, chunk: int = 262_144) -> ScoredFlows:
        """A whole file (the same result as feeding it in any pieces), in bounded memory."""
        parts = [self.feed(x[lo:lo + chunk]) for lo in range(0, len(x), chunk)]
        return ScoredFlows.concat([*parts, self.finish()])

    # --- internals ---------------------------------------------------------------------------
    def _append(self, x: np.ndarray) -> None:
        self._x = np.concatenate([self._x, x]) if len(self._x) else x.copy()
        k = len(x)
        self._score = np.concatenate([self._score, np.full(k, -np.inf if self.use_max else 0.0)])
        self._count = np.concatenate([self._count, np.zeros(k)])
        if self.keep or not self.by_deviation:
            self._feat = np.concatenate([self._feat, np.zeros((k, x.shape[1]), np.float32)])
        self._seen += k

    def _run_model(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = score_array(self.model, windows, batch_size=self.batch_size, device=self.device)
        return (np.asarray(out.flow_scores, np.float64), np.asarray(out.flow_errors, np.float32),
                np.asarray(out.window_scores, np.float32))

    def _score_windows(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(starts) == 0:
            return np.zeros(0, np.float32), starts
        local = starts - self._base
        view = np.lib.stride_tricks.sliding_window_view(self._x, self.window, axis=0)
        window_scores = []
        T = self.window
        for lo in range(0, len(local), self.batch_size):
            chunk = local[lo:lo + self.batch_size]
            first = int(chunk[0])
            tiled = len(chunk) == 1 or bool(np.all(np.diff(chunk) == T))
            if tiled:  # windows side by side: the batch is a reshape of the rows, and so are the flows
                batch = self._x[first:first + len(chunk) * T].reshape(len(chunk), T, -1)
            else:
                batch = np.ascontiguousarray(view[chunk].transpose(0, 2, 1))
            scores, errors, ws = self._run_model(batch)
            window_scores.append(ws)
            if tiled:
                rows = slice(first, first + len(chunk) * T)
                self._accumulate_step(rows, scores.reshape(-1), errors.reshape(len(chunk) * T, -1))
            else:
                for t in range(T):
                    self._accumulate_step(chunk + t, scores[:, t], errors[:, t])
        return np.concatenate(window_scores), starts

    def _accumulate_step(self, idx, scores: np.ndarray, errors: np.ndarray) -> None:
        """One step t of a batch: ``idx`` (local indices, all distinct, or a slice) receive their
        own step's values."""
        if self.use_max:
            self._score[idx] = np.maximum(self._score[idx], scores)
        else:
            self._score[idx] += scores
        self._count[idx] += 1
        if self.keep or not self.by_deviation:
            self._feat[idx] += errors

    def _emit(self, upto: int, window_scores: np.ndarray, window_starts: np.ndarray) -> ScoredFlows:
        """Hand out flows ``[base, upto)`` and drop them from the buffers."""
        k = max(0, upto - self._base)
        count = np.maximum(self._count[:k], 1)
        own = self._score[:k] if self.use_max else self._score[:k] / count
        feat = (self._feat[:k] / count[:, None].astype(np.float32)) if (self.keep or not self.by_deviation) \
            else None
        scores = self.flow_score_fn(feat, own, self._x[:k]) if self.flow_score_fn is not None else own
        basis = np.abs(self._x[:k]) if self.by_deviation else feat
        top = top_features(basis)
        out = ScoredFlows(self._base, np.asarray(scores, np.float64), top,
                          feat if self.return_errors else None,
                          np.asarray(window_scores, np.float32), np.asarray(window_starts, np.int64))
        self._x, self._score, self._count = self._x[k:], self._score[k:], self._count[k:]
        if len(self._feat):
            self._feat = self._feat[k:]
        self._base += k
        return out


def top_features(values: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """Column indices of the ``k`` largest values per row, largest first (int16 [n, k]).

    ``k + 1`` row-wise argmax passes (half the time of a row-wise partition on 59 features); a
    row where those values tie, or hold NaN or -inf, is ranked by :func:`_top_by_partition`, the
    original rule, so that every row gets the indices it always got."""
    n, f = values.shape
    k = min(k, f)
    if n == 0:
        return np.zeros((0, k), np.int16)
    picks = k + 1 if k < f else k  # one more than k: a tie at the k-th place is a tie too
    work = np.array(values)
    rows = np.arange(n)
    index = np.empty((n, picks), np.intp)
    picked = np.empty((n, picks), work.dtype)
    for j in range(picks):
        best = work.argmax(axis=1)
        index[:, j] = best
        picked[:, j] = work[rows, best]
        work[rows, best] = -np.inf
    unsure = (np.isnan(picked) | np.isneginf(picked)).any(axis=1) | (picked[:, :-1] == picked[:, 1:]).any(axis=1)
    out = index[:, :k].astype(np.int16)
    if unsure.any():
        redo = np.flatnonzero(unsure)
        out[redo] = _top_by_partition(values[redo], k)
    return out


def _top_by_partition(values: np.ndarray, k: int) -> np.ndarray:
    """The ranking rule where values tie: a row-wise partition, then a stable sort of the k."""
    part = np.argpartition(-values, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(values, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int16)
