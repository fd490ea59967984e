"""Does tonight's traffic still look like what the champion was calibrated on? Feature and score drift.

One reference period: the benign calibration flows (the later benign flows the threshold was set
on), for the features and the anomaly score alike, and of those only the ones under the threshold,
because a night is measured on the same kind of flows. Kept with the model, bounded whatever the
calibration size: per model feature, the decile edges of those flows (scaled) and the share of
flows in each bin; for the anomaly score, the same plus a 2,000-score sample.

A night's drift is measured on the flows the champion did **not** flag, and, when the log carries
labels, only on those not labelled as an attack: drift asks whether the traffic the model calls
normal is still the traffic it learned, and an attack the model catches is not drift. (Measured on
every flow, each attack night said "consider retraining", the wrong advice in the middle of an
attack.) The flagged share is reported beside it: a night that flags much more than the calibrated
false-positive rate is news either way, but it is the detections' news, not drift's.

Bins are compared with the population stability index, ``PSI = sum((a - e) * ln(a / e))`` over
bins (a: tonight's share, e: the reference's), accumulated batch by batch (memory does not grow
with the night); the score distribution also with scipy's two-sample Kolmogorov-Smirnov statistic
on a bounded sample. The sample keeps the flows with the smallest keys, a key being a hash of
(the file's key, the flow's row number): each file draws independent keys, so merged files make a
uniform sample of the night, and a file scored in parts keeps exactly the sample of the single pass.

Reading PSI (the usual convention): < 0.1 stable, 0.1-0.25 moderate, > 0.25 a real shift. The
summary warns (a sign to retrain) when the score PSI is above 0.25 or more than a fifth of the
features are, on at least ``MIN_MEASURED`` unflagged flows.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np

BINS = 10
PSI_SHIFT = 0.25
FEATURE_SHARE = 0.2
SAMPLE = 2_000
MIN_MEASURED = 200  # fewer unflagged flows than this: too noisy to call drift
_EPS = 1e-4


def _edges(values: np.ndarray, bins: int = BINS) -> np.ndarray:
    inner = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    return inner.astype(np.float64)


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return counts / max(counts.sum(), 1)


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)``:
    flows per bin. For a few finite increasing edges it counts the values at or above each edge
    instead (a bin's count is the difference of two of those; NaN goes last, as searchsorted puts
    it): a handful of vectorised comparisons, where a binary search per value cost about 1 ms
    per feature and 50,000 flows."""
    if len(edges) > 32 or not (np.isfinite(edges).all() and np.all(np.diff(edges) > 0)):
        return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    nan = int(np.count_nonzero(np.isnan(values)))
    at_least = np.empty(len(edges) + 2, np.int64)
    at_least[0], at_least[-1] = len(values) - nan, 0
    for i, edge in enumerate(edges):
        at_least[i + 1] = np.count_nonzero(values >= edge)
    counts = at_least[:-1] - at_least[1:]
    counts[-1] += nan
    return counts


def build_reference(x: np.ndarray, feature_names: list[str], scores: np.ndarray, seed: int = 0,
                    max_rows: int = 200_000, threshold: float | None = None) -> dict:
    """Bin edges and shares (JSON-able) of one set of benign flows: ``x`` their scaled features and
    ``scores`` their anomaly scores, row for row (the calibration flows). With ``threshold``, only
    the flows it does not flag, as a night is measured."""
    x = np.asarray(x)
    scores = np.asarray(scores, np.float64)
    if len(x) != len(scores):
        raise ValueError(f"the reference needs the features and scores of the same flows: "
                         f"{len(x)} feature rows, {len(scores)} scores")
    keep = np.isfinite(scores)
    if threshold is not None:
        keep &= scores <= threshold
    rows = np.flatnonzero(keep)
    rng = np.random.default_rng(seed)
    if len(rows) > max_rows:
        rows = np.sort(rng.choice(rows, size=max_rows, replace=False))
    sample, scores = np.asarray(x[rows], np.float64), scores[rows]
    features = {}
    for j, name in enumerate(feature_names):
        edges = _edges(sample[:, j]) if len(rows) else np.zeros(0)
        features[name] = {"edges": edges.tolist(), "shares": _shares(sample[:, j], edges).tolist()}
    edges = _edges(scores) if len(scores) else np.zeros(0)
    pick = rng.choice(len(scores), size=min(len(scores), SAMPLE), replace=False) if len(scores) else []
    return {"bins": BINS, "rows": len(rows), "period": "benign calibration flows",
            "threshold": None if threshold is None else float(threshold), "features": features,
            "score": {"edges": edges.tolist(), "shares": _shares(scores, edges).tolist(),
                      "sample": np.sort(scores[pick]).tolist()}}


def psi(actual: np.ndarray, expected: np.ndarray) -> float:
    a = np.clip(np.asarray(actual, np.float64), _EPS, None)
    e = np.clip(np.asarray(expected, np.float64), _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def key_seed(key: str) -> int:
    """A 64-bit seed from a file's key (its name, or archive and member)."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "little")


def row_keys(seed: int, rows: np.ndarray) -> np.ndarray:
    """Uniform keys in [0, 1), one per row id, from splitmix64 of (seed, row): the same row of the
    same file always gets the same key; another file's keys are independent of these."""
    with np.errstate(over="ignore"):
        z = np.asarray(rows, np.int64).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@dataclass
class DriftReport:
    flows: int  # every flow of the night that drift saw
    feature_psi: dict[str, float]
    score_psi: float
    score_ks: float
    score_ks_pvalue: float
    shifted_features: list[str] = field(default_factory=list)
    warning: str | None = None
    measured: int = 0  # the flows drift was measured on
    measured_on: str = "flows the champion did not flag"
    flagged: int = 0
    flagged_share: float = 0.0
    unflagged_attacks: int = 0  # unflagged flows left out because their label names an attack
    reference: str = "benign calibration flows"
    note: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class DriftAccumulator:
    """Counts tonight's unflagged flows into the reference bins, batch by batch, in bounded memory."""

    def __init__(self, reference: dict, feature_names: list[str], key: str = "") -> None:
        self.reference = reference
        self.names = [n for n in feature_names if n in reference.get("features", {})]
        self.cols = [feature_names.index(n) for n in self.names]
        self.edges = [np.asarray(reference["features"][n]["edges"]) for n in self.names]
        self.counts = [np.zeros(len(e) + 1, np.int64) for e in self.edges]
        score = reference.get("score", {})
        self.score_edges = np.asarray(score.get("edges", []), np.float64)
        self.score_counts = np.zeros(len(self.score_edges) + 1, np.int64)
        self.seed = key_seed(key)
        self.sample = np.zeros(0)
        self._keys = np.zeros(0)
        self.total = 0  # flows seen, flagged or not
        self.flagged = 0
        self.labelled = False  # some flow carried a label
        self.unflagged_attacks = 0
        self.seen = 0  # flows measured

    def add(self, x: np.ndarray, scores: np.ndarray, flagged: np.ndarray | None = None,
            attack: np.ndarray | None = None, labelled: bool = False, rows: np.ndarray | None = None) -> None:
        """One batch: scaled features, scores, the champion's flags, which flows a label names as an
        attack (``labelled``: the batch carries labels at all) and row ids (row numbers within the
        file; by default the order of arrival)."""
        scores = np.asarray(scores, np.float64)
        n = len(scores)
        rows = np.arange(self.total, self.total + n) if rows is None else np.asarray(rows)
        self.total += n
        keep = np.ones(n, bool) if flagged is None else ~np.asarray(flagged, bool)
        self.flagged += n - int(keep.sum())
        self.labelled |= labelled
        if attack is not None:
            attack = keep & np.asarray(attack, bool)
            self.unflagged_attacks += int(attack.sum())
            keep &= ~attack
        if not keep.all():
            scores, rows = scores[keep], rows[keep]
        # one float64 copy of the measured flows, a feature per row (one transposing pass): each
        # feature's bin count then reads a contiguous row, compared in float64 as before
        x = np.asarray(x) if keep.all() else np.asarray(x)[keep]
        if self.cols != list(range(x.shape[1])):
            x = x[:, self.cols]
        columns = x.T.astype(np.float64, order="C")
        for k, edges in enumerate(self.edges):
            self.counts[k] += bin_counts(columns[k], edges)
        self.score_counts += np.bincount(np.searchsorted(self.score_edges, scores, side="right"),
                                         minlength=len(self.score_edges) + 1)
        self._keep(scores, row_keys(self.seed, rows))
        self.seen += len(scores)

    def _keep(self, scores: np.ndarray, keys: np.ndarray) -> None:
        """Keep the SAMPLE scores with the smallest keys: a uniform sample of everything seen."""
        both_keys = np.concatenate([self._keys, keys])
        both = np.concatenate([self.sample, scores])
        if len(both) > SAMPLE:
            keep = np.argpartition(both_keys, SAMPLE - 1)[:SAMPLE]
            both, both_keys = both[keep], both_keys[keep]
        self.sample, self._keys = both, both_keys

    def merge(self, other: DriftAccumulator) -> None:
        """Add another accumulator over the same reference (another file of the night)."""
        for mine, theirs in zip(self.counts, other.counts):
            mine += theirs
        self.score_counts += other.score_counts
        self._keep(other.sample, other._keys)
        self.total += other.total
        self.flagged += other.flagged
        self.labelled |= other.labelled
        self.unflagged_attacks += other.unflagged_attacks
        self.seen += other.seen

    def report(self) -> DriftReport:
        from scipy.stats import ks_2samp

        ref = self.reference
        measured_on = ("flows the champion did not flag, not labelled as an attack" if self.labelled
                       else "flows the champion did not flag")
        counts = {"measured": self.seen, "measured_on": measured_on, "flagged": self.flagged,
                  "flagged_share": self.flagged / self.total if self.total else 0.0,
                  "unflagged_attacks": self.unflagged_attacks}
        if not self.seen:
            return DriftReport(self.total, {}, float("nan"), float("nan"), float("nan"),
                               note="no unflagged flows to measure drift on", **counts)
        feature_psi = {n: psi(c / max(c.sum(), 1), ref["features"][n]["shares"])
                       for n, c in zip(self.names, self.counts)}
        score_psi = psi(self.score_counts / max(self.score_counts.sum(), 1), ref["score"]["shares"])
        ref_sample = np.asarray(ref.get("score", {}).get("sample", []))
        ks, p = (ks_2samp(self.sample, ref_sample) if len(self.sample) and len(ref_sample)
                 else (float("nan"), float("nan")))
        shifted = sorted((n for n, v in feature_psi.items() if v > PSI_SHIFT),
                         key=lambda n: -feature_psi[n])
        reasons = []
        if np.isfinite(score_psi) and score_psi > PSI_SHIFT:
            reasons.append(f"anomaly-score PSI {score_psi:.2f} > {PSI_SHIFT}")
        if self.names and len(shifted) > FEATURE_SHARE * len(self.names):
            reasons.append(f"{len(shifted)} of {len(self.names)} features with PSI > {PSI_SHIFT}")
        note = warning = None
        if reasons and self.seen < MIN_MEASURED:
            note = f"only {self.seen} unflagged flows: too few to call drift ({'; '.join(reasons)})"
        elif reasons:
            warning = (f"the {self.seen:,} flows the champion did not flag no longer look like its benign "
                       f"calibration flows (" + "; ".join(reasons) + "): consider retraining")
        return DriftReport(self.total, feature_psi, float(score_psi), float(ks), float(p), shifted, warning,
                           note=note, **counts)
