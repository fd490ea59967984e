"""Figures people would rather see than read: ROC and PR curves, score histograms by label,
recall per attack label, and reconstructions against inputs. Each returns a matplotlib figure
(closed, ready for ``mlflow.log_figure``); nothing here logs or writes.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from components.data.contract import BENIGN


def _done(fig):
    fig.tight_layout()
    plt.close(fig)
    return fig


def roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str = "ROC (flow level)"):
    """``curves``: name -> (scores, is_attack); one line per name, AUROC in the legend."""
    from sklearn.metrics import roc_auc_score

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, (scores, truth) in curves.items():
        if truth.all() or not truth.any():
            continue
        fpr, tpr, _ = roc_curve(truth, scores)
        ax.plot(fpr, tpr, label=f"{name} ({roc_auc_score(truth, scores):.3f})", lw=1.4)
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title=title)
    ax.legend(fontsize=7, loc="lower right")
    return _done(fig)


def pr_figure(scores: np.ndarray, is_attack: np.ndarray, threshold: float | None = None):
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    if is_attack.any() and not is_attack.all():
        precision, recall, _ = precision_recall_curve(is_attack, scores)
        ax.plot(recall, precision, lw=1.4)
        if threshold is not None:
            pred = scores > threshold
            tp = (pred & is_attack).sum()
            p = tp / max(pred.sum(), 1)
            r = tp / max(is_attack.sum(), 1)
            ax.scatter([r], [p], c="red", zorder=3, label="calibrated threshold")
            ax.legend(fontsize=8)
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (flow level)", ylim=(0, 1.02))
    return _done(fig)


def score_histogram(scores: np.ndarray, labels: np.ndarray, threshold: float | None = None,
                    reference: np.ndarray | None = None, title: str = "Scores by label"):
    """Histograms of (log) scores per label, the threshold, and optionally a reference sample."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    shift = 1e-9 - min(0.0, float(np.min(scores))) if len(scores) else 0.0
    logs = np.log10(np.asarray(scores, np.float64) + shift + 1e-12)
    bins = np.histogram_bin_edges(logs, bins=60) if len(logs) else 10
    if reference is not None and len(reference):
        ref = np.log10(np.asarray(reference, np.float64) + shift + 1e-12)
        ax.hist(ref, bins=bins, density=True, histtype="step", color="black", lw=1.5,
                label="calibration (benign)")
    for label in sorted(set(np.asarray(labels).tolist()), key=lambda x: (x != BENIGN, x)):
        mask = np.asarray(labels) == label
        ax.hist(logs[mask], bins=bins, density=True, alpha=0.45, label=f"{label} ({mask.sum()})")
    if threshold is not None:
        ax.axvline(np.log10(threshold + shift + 1e-12), c="red", ls="--", label="threshold")
    ax.set(xlabel="log10 anomaly score", ylabel="density", title=title)
    ax.legend(fontsize=7)
    return _done(fig)


def recall_bars(recall_per_label: dict[str, float], fpr: float | None = None):
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.4 * max(len(recall_per_label), 1)))
    labels = list(recall_per_label)
    ax.barh(labels, [recall_per_label[k] for k in labels], color="tab:blue")
    if fpr is not None and np.isfinite(fpr):
        ax.axvline(fpr, c="red", ls="--", label=f"FPR on benign {fpr:.3f}")
        ax.legend(fontsize=8)
    ax.set(xlim=(0, 1.02), xlabel="recall at the calibrated threshold", title="Recall per attack label")
    return _done(fig)


def reconstruction_figure(inputs: np.ndarray, recon: np.ndarray, feature_names: list[str],
                          titles: list[str], k_features: int = 4):
    """A few windows, one row each: the features with the largest error, input vs reconstruction."""
    n = len(inputs)
    fig, axes = plt.subplots(n, 1, figsize=(7, 2.2 * max(n, 1)), squeeze=False)
    for i in range(n):
        ax = axes[i, 0]
        top = np.argsort(-((inputs[i] - recon[i]) ** 2).mean(axis=0))[:k_features]
        for j in top:
            line = ax.plot(inputs[i][:, j], lw=1.3, label=feature_names[j][:28])[0]
            ax.plot(recon[i][:, j], lw=1.0, ls="--", c=line.get_color())
        ax.set_title(titles[i], fontsize=9)
        ax.set_xlabel("flow in window (solid: input, dashed: reconstruction; scaled units)", fontsize=8)
        ax.legend(fontsize=6, ncol=2)
    return _done(fig)


def leaderboard_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]]):
    return roc_figure(curves, title="ROC of every model (flow level)")


def night_histogram(counts: np.ndarray, reference: list[float], threshold: float):
    """Tonight's scores (fixed log bins, accumulated while streaming) against the calibration sample."""
    from components.report.night import HIST_EDGES

    fig, ax = plt.subplots(figsize=(6.5, 4))
    centres = np.r_[HIST_EDGES[0] - 0.05, (HIST_EDGES[:-1] + HIST_EDGES[1:]) / 2, HIST_EDGES[-1] + 0.05]
    total = max(int(counts.sum()), 1)
    ax.step(centres, counts / total, where="mid", label=f"tonight ({total:,} flows)")
    if len(reference):
        ref, _ = np.histogram(np.log10(np.maximum(reference, 1e-12)), bins=np.r_[-np.inf, HIST_EDGES, np.inf])
        ax.step(centres, ref / max(ref.sum(), 1), where="mid", c="black", label="calibration (benign)")
    ax.axvline(np.log10(max(threshold, 1e-12)), c="red", ls="--", label="threshold")
    # the fixed bins span 14 decades so that nights add up; show the decades that hold data
    used = np.flatnonzero(counts + (ref if len(reference) else 0))
    lo, hi = (centres[used[0]], centres[used[-1]]) if len(used) else (centres[0], centres[-1])
    t = np.log10(max(threshold, 1e-12))
    ax.set_xlim(min(lo, t) - 0.3, max(hi, t) + 0.3)
    ax.set(xlabel="log10 anomaly score", ylabel="share of flows", title="Scores tonight vs calibration")
    ax.legend(fontsize=8)
    return _done(fig)


def anomalies_over_time(by_hour: dict[str, dict]):
    hours = list(by_hour)
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(hours)), 3.5))
    ax.bar(range(len(hours)), [by_hour[h]["anomalies"] for h in hours], color="tab:red", label="anomalies")
    ax2 = ax.twinx()
    ax2.plot(range(len(hours)), [by_hour[h]["flows"] for h in hours], c="grey", lw=1, label="flows")
    ax.set_xticks(range(len(hours)), [h[-5:] for h in hours], rotation=90, fontsize=7)
    ax.set(ylabel="anomalies", title="Anomalies per hour")
    ax2.set_ylabel("flows")
    return _done(fig)


def drift_bars(feature_psi: dict[str, float], top: int = 25):
    from components.detect.drift import PSI_SHIFT

    items = sorted(feature_psi.items(), key=lambda kv: -kv[1])[:top]
    fig, ax = plt.subplots(figsize=(6.5, 0.6 + 0.25 * len(items)))
    ax.barh([k for k, _ in items][::-1], [v for _, v in items][::-1],
            color=["tab:red" if v > PSI_SHIFT else "tab:blue" for _, v in items][::-1])
    ax.axvline(PSI_SHIFT, c="red", ls="--", label=f"PSI {PSI_SHIFT}: a real shift")
    ax.set(xlabel="population stability index vs the champion's benign calibration flows", title="Feature drift")
    ax.legend(fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    return _done(fig)
