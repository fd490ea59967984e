"""Does tonight's traffic still look like what the champion learned? Per-feature and score drift.

The reference is kept with the model, bounded whatever the training size: per model feature, the
decile edges of the benign training flows (scaled) and the share of flows in each bin; for the
anomaly score, the same for the benign calibration flows plus a 2,000-score sample. A night is
compared bin by bin with the population stability index,
``PSI = sum((a - e) * ln(a / e))`` over bins (a: tonight's share, e: the reference's), accumulated
batch by batch (memory does not grow with the night), and the score distribution also with
scipy's two-sample Kolmogorov-Smirnov statistic on a bounded reservoir sample.

Reading PSI (the usual convention): < 0.1 stable, 0.1-0.25 moderate, > 0.25 a real shift. The
summary warns (a sign to retrain) when the score PSI is above 0.25 or more than a fifth of the
features are.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

BINS = 10
PSI_SHIFT = 0.25
FEATURE_SHARE = 0.2
SAMPLE = 2_000
_EPS = 1e-4


def _edges(values: np.ndarray, bins: int = BINS) -> np.ndarray:
    inner = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    return inner.astype(np.float64)


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return counts / max(counts.sum(), 1)


def build_reference(x: np.ndarray, feature_names: list[str], calibration_scores: np.ndarray,
                    seed: int = 0, max_rows: int = 200_000) -> dict:
    """Bin edges and shares of the benign training features and calibration scores (JSON-able)."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(x), size=min(len(x), max_rows), replace=False) if len(x) else []
    sample = np.asarray(x[np.sort(rows)], np.float64)
    features = {}
    for j, name in enumerate(feature_names):
        edges = _edges(sample[:, j])
        features[name] = {"edges": edges.tolist(), "shares": _shares(sample[:, j], edges).tolist()}
    scores = np.asarray(calibration_scores, np.float64)
    scores = scores[np.isfinite(scores)]
    edges = _edges(scores) if len(scores) else np.zeros(0)
    pick = rng.choice(len(scores), size=min(len(scores), SAMPLE), replace=False) if len(scores) else []
    return {"bins": BINS, "rows": len(sample), "features": features,
            "score": {"edges": edges.tolist(), "shares": _shares(scores, edges).tolist(),
                      "sample": np.sort(scores[pick]).tolist()}}


def psi(actual: np.ndarray, expected: np.ndarray) -> float:
    a = np.clip(np.asarray(actual, np.float64), _EPS, None)
    e = np.clip(np.asarray(expected, np.float64), _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass
class DriftReport:
    flows: int
    feature_psi: dict[str, float]
    score_psi: float
    score_ks: float
    score_ks_pvalue: float
    shifted_features: list[str] = field(default_factory=list)
    warning: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class DriftAccumulator:
    """Counts tonight's flows into the reference bins, batch by batch, in bounded memory."""

    def __init__(self, reference: dict, feature_names: list[str], seed: int = 0) -> None:
        self.reference = reference
        self.names = [n for n in feature_names if n in reference.get("features", {})]
        self.cols = [feature_names.index(n) for n in self.names]
        self.edges = [np.asarray(reference["features"][n]["edges"]) for n in self.names]
        self.counts = [np.zeros(len(e) + 1, np.int64) for e in self.edges]
        score = reference.get("score", {})
        self.score_edges = np.asarray(score.get("edges", []), np.float64)
        self.score_counts = np.zeros(len(self.score_edges) + 1, np.int64)
        self.rng = np.random.default_rng(seed)
        self.sample = np.zeros(0)
        self._keys = np.zeros(0)
        self.seen = 0

    def add(self, x: np.ndarray, scores: np.ndarray) -> None:
        for k, (col, edges) in enumerate(zip(self.cols, self.edges)):
            self.counts[k] += np.bincount(np.searchsorted(edges, x[:, col], side="right"),
                                          minlength=len(edges) + 1)
        scores = np.asarray(scores, np.float64)
        self.score_counts += np.bincount(np.searchsorted(self.score_edges, scores, side="right"),
                                         minlength=len(self.score_edges) + 1)
        self._reservoir(scores)
        self.seen += len(scores)

    def _reservoir(self, scores: np.ndarray) -> None:
        """Keep a uniform sample of at most SAMPLE scores over everything seen (vectorised)."""
        keys = self.rng.random(len(scores))
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
        keys = np.concatenate([self._keys, other._keys])
        sample = np.concatenate([self.sample, other.sample])
        if len(sample) > SAMPLE:
            keep = np.argpartition(keys, SAMPLE - 1)[:SAMPLE]
            sample, keys = sample[keep], keys[keep]
        self.sample, self._keys = sample, keys
        self.seen += other.seen

    def report(self) -> DriftReport:
        from scipy.stats import ks_2samp

        ref = self.reference
        feature_psi = {n: psi(c / max(c.sum(), 1), ref["features"][n]["shares"])
                       for n, c in zip(self.names, self.counts)}
        score_psi = psi(self.score_counts / max(self.score_counts.sum(), 1), ref["score"]["shares"]) \
            if self.seen else float("nan")
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
        warning = ("traffic no longer looks like the data the champion learned ("
                   + "; ".join(reasons) + "): consider retraining") if reasons else None
        return DriftReport(self.seen, feature_psi, float(score_psi), float(ks), float(p), shifted,
                           warning)
