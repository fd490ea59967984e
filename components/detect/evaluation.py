"""Flow- and window-level evaluation of scores against labels (scikit-learn metrics).

What is reported (DESIGN.md's protocol): AUROC and AUPRC over all flows; precision, recall and F1
at the *calibrated* threshold; FPR on benign flows; recall per attack label; confusion counts;
the same at window level (a window is an attack window when any of its flows is one). No point
adjustment: it inflates results. The best-F1 threshold on these labels is reported as an oracle,
for comparison only.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score

from components.data.contract import BENIGN
from components.detect.calibration import oracle_threshold


@dataclass
class Evaluation:
    flows: int
    attacks: int
    auroc: float
    auprc: float
    precision: float
    recall: float
    f1: float
    fpr: float
    threshold: float
    confusion: dict[str, int]
    recall_per_label: dict[str, float] = field(default_factory=dict)
    flows_per_label: dict[str, int] = field(default_factory=dict)
    auroc_per_label: dict[str, float] = field(default_factory=dict)
    oracle_threshold: float = math.nan
    oracle_f1: float = math.nan
    window: dict[str, float] = field(default_factory=dict)
    entity: dict = field(default_factory=dict)  # ``entities.entity_evaluation`` (hosts per night)

    def to_dict(self) -> dict:
        return asdict(self)

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat numeric metrics for MLflow (NaN ones left out: MLflow rejects them in places)."""
        out = {"auroc": self.auroc, "auprc": self.auprc, "precision": self.precision,
               "recall": self.recall, "f1": self.f1, "fpr": self.fpr,
               "oracle_f1": self.oracle_f1, "flows": self.flows, "attacks": self.attacks}
        out.update({f"recall.{_key(k)}": v for k, v in self.recall_per_label.items()})
        out.update({f"auroc.{_key(k)}": v for k, v in self.auroc_per_label.items()})
        out.update({f"window_{k}": v for k, v in self.window.items()})
        if self.entity.get("available"):
            out.update({f"entity_{k}": self.entity[k] for k in
                        ("auroc", "recall_at_budget", "benign_flagged_per_night", "attacking_in_top3", "hosts")})
        return {f"{prefix}{k}": float(v) for k, v in out.items() if v is not None and np.isfinite(v)}


def _key(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label).strip("_")


def _safe(fn, *args) -> float:
    try:
        return float(fn(*args))
    except ValueError:  # one class only
        return math.nan


def evaluate(scores: np.ndarray, labels: np.ndarray, threshold: float,
             window_scores: np.ndarray | None = None, window_labels: np.ndarray | None = None,
             benign: str = BENIGN, entity: dict | None = None) -> Evaluation:
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, dtype=object)
    is_attack = labels != benign
    predicted = scores > threshold
    tn, fp, fn, tp = confusion_matrix(is_attack, predicted, labels=[False, True]).ravel()
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    f1 = 2 * precision * recall / (precision + recall) if tp else (0.0 if tp + fn else math.nan)
    fpr = fp / (fp + tn) if fp + tn else math.nan
    per_label, per_count, per_auroc = {}, {}, {}
    benign_scores = scores[~is_attack]
    for label in sorted(set(labels[is_attack].tolist())):
        mask = labels == label
        per_label[label] = float(predicted[mask].mean())
        per_count[label] = int(mask.sum())
        if len(benign_scores):
            both = np.concatenate([benign_scores, scores[mask]])
            truth = np.r_[np.zeros(len(benign_scores)), np.ones(int(mask.sum()))]
            per_auroc[label] = _safe(roc_auc_score, truth, both)
    oracle_t, oracle_f1 = oracle_threshold(scores, is_attack)
    window = {}
    if window_scores is not None and window_labels is not None and len(window_scores):
        w_attack = np.asarray(window_labels) != benign
        window = {"auroc": _safe(roc_auc_score, w_attack, window_scores),
                  "auprc": _safe(average_precision_score, w_attack, window_scores),
                  "windows": float(len(window_scores)), "attack_windows": float(w_attack.sum())}
    ranked = is_attack.any() and not is_attack.all()
    return Evaluation(
        flows=len(scores), attacks=int(is_attack.sum()),
        auroc=_safe(roc_auc_score, is_attack, scores) if ranked else math.nan,
        auprc=_safe(average_precision_score, is_attack, scores) if ranked else math.nan,
        precision=float(precision), recall=float(recall), f1=float(f1), fpr=float(fpr),
        threshold=float(threshold),
        confusion={"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        recall_per_label=per_label, flows_per_label=per_count, auroc_per_label=per_auroc,
        oracle_threshold=oracle_t, oracle_f1=oracle_f1, window=window, entity=dict(entity or {}))


def recall_at_fpr(attack_scores: np.ndarray, benign_scores: np.ndarray, fpr: float = 0.01) -> float:
    """Share of attack flows scoring above the (1 - ``fpr``) quantile of ``benign_scores``.

    Why: AUROC averages over every threshold, most of which no night could live at; a night lives
    at a small false-alarm budget. DESIGN reports, beside AUROC, recall at 1% false positives on
    *another day's* benign flows (pass those as ``benign_scores``): a threshold that transfers
    between days, not one fitted on the test day's own benign tail. The threshold is
    ``np.quantile(benign_scores, 1 - fpr)`` (numpy's default linear interpolation: the 99th
    percentile for ``fpr=0.01``); a flow is flagged when its score is strictly above it, as at the
    calibrated threshold. NaN when either set is empty.
    """
    if not 0 < fpr < 1:
        raise ValueError(f"fpr must be in (0, 1), got {fpr}")
    attack = np.asarray(attack_scores, np.float64)
    benign = np.asarray(benign_scores, np.float64)
    if len(attack) == 0 or len(benign) == 0:
        return math.nan
    return float(np.mean(attack > np.quantile(benign, 1.0 - fpr)))


def window_labels(labels: np.ndarray, starts: np.ndarray, window: int, n: int,
                  benign: str = BENIGN) -> np.ndarray:
    """Per window (first flow ``starts``, may be negative for a padded short file): ``benign`` when
    all its real flows are benign, else the attack label of its first attack flow."""
    labels = np.asarray(labels, dtype=object)
    attack = (labels != benign).astype(np.int64)
    cs = np.concatenate([[0], np.cumsum(attack)])
    lo = np.clip(starts, 0, n)
    hi = np.clip(starts + window, 0, n)
    has = (cs[hi] - cs[lo]) > 0
    out = np.full(len(starts), benign, dtype=object)
    if has.any():
        first_attack = np.searchsorted(cs, cs[lo[has]] + 1) - 1  # index of the first attack flow
        out[has] = labels[first_attack]
    return out
