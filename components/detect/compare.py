"""Every model on the same data, split and budget, evaluated identically: the leaderboard.

``flowae compare`` and ``benchmarks/quality.py`` both run models through :func:`run_model`, so
the benchmark measures exactly what users compare. Besides the five families and the three
window baselines, two single-flow baselines (``isolation_forest_flow``, ``pca_flow``: the same
baselines on windows of one flow) answer "does the sequence help at all?", and
``iae_lstm_svdd`` (IAE-LSTM-KL without the KL term) answers "does the KL help?";
``mahalanobis_flow`` (a Ledoit-Wolf Mahalanobis distance of each flow's own scaled features, no
network) is the bar a network has to clear.

Beside AUROC every row reports recall at 1% false positives on *another day's* benign flows
(DESIGN's operating point), per attack label and over all attacks, when the test data holds such
flows: the benign test flows of files that are not training files and whose capture day is not a
training file's (see :func:`other_day_files`).
"""
from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.data.capture_order import DAYS, TIMESTAMP, FileOrder, capture_key
from components.data.contract import BENIGN
from components.detect.evaluation import Evaluation, evaluate, recall_at_fpr
from components.detect.fit import FitResult, fit_detector
from components.detect.holdout import EvalSet, score_test
from components.jobs import TrainJob
from components.learn.models import BASELINE_NAMES, MODEL_NAMES
from components.settings import load_settings

#: name in a comparison -> (model, overrides of the job's training config)
SPECS: dict[str, tuple[str, dict]] = {
    **{m: (m, {}) for m in MODEL_NAMES + BASELINE_NAMES},
    "isolation_forest_flow": ("isolation_forest", {"window": 1, "stride": 1}),
    "pca_flow": ("pca", {"window": 1, "stride": 1}),
    # ablation: IAE-LSTM-KL without its KL term, i.e. a plain LSTM autoencoder with deep SVDD
    "iae_lstm_svdd": ("iae_lstm_kl", {"model_kwargs": {"lambda_kl": 0.0}}),
}
ALL = tuple(SPECS)
#: the false-positive budget on other-day benign flows at which recall is reported
OTHER_DAY_FPR = 0.01
RECALL_AT_FPR = "recall@1%FPR"


def resolve_models(text: str) -> list[str]:
    """``all`` or a comma-separated list of names from :data:`SPECS`."""
    names = list(ALL) if text.strip() == "all" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SPECS]
    if unknown or not names:
        raise ValueError(f"unknown model(s) {', '.join(unknown) or '(none)'}; valid: all, {', '.join(ALL)}")
    return names


def job_for(spec: str, job: TrainJob) -> TrainJob:
    model, overrides = SPECS[spec]
    train = job.train.model_copy(update={"model": model, **overrides})
    return job.model_copy(update={"train": train, "register_model": False, "resume": False})


def capture_day(name: str, order: FileOrder) -> str | None:
    """The capture day of a file: the weekday its name gives or, when the files were ordered by
    timestamps, the date of its first flow; None when neither is known."""
    if order.method == TIMESTAMP:  # keys name the inputs (Monday.csv) or the curated files
        stem = Path(name).stem
        stamp = order.keys.get(name) or next((v for k, v in order.keys.items() if Path(k).stem == stem), None)
        try:
            return dt.datetime.fromisoformat(stamp).date().isoformat()
        except (TypeError, ValueError):
            return None
    key = capture_key(name)
    return DAYS[key[0]] if key is not None else None


def other_day_files(files: list[Path], training_files: list[Path], order: FileOrder) -> list[str]:
    """Names of the files whose benign flows count as *another day's*: not a training file, and
    not captured on a training file's day. A file whose day is unknown (no weekday in its name, no
    timestamps: e.g. a sample drawn from the whole week) counts as another day's; the leaderboard
    names the files it used, so the reader can judge."""
    training = {f.name for f in training_files}
    days = {capture_day(f.name, order) for f in training_files} - {None}
    return [f.name for f in files
            if f.name not in training and capture_day(f.name, order) not in days]


def recall_at_other_day_fpr(scored: EvalSet, other_files: list[str], fpr: float = OTHER_DAY_FPR) -> dict:
    """``{"": overall, label: recall}`` at ``fpr`` false positives on the benign flows of
    ``other_files`` (empty when the test data holds none)."""
    is_attack = scored.labels != BENIGN
    other = ~is_attack & np.isin(scored.files, list(other_files))
    if not other.any() or not is_attack.any():
        return {}
    benign = scored.scores[other]
    out = {"": recall_at_fpr(scored.scores[is_attack], benign, fpr)}
    for label in sorted(set(scored.labels[is_attack].tolist())):
        out[label] = recall_at_fpr(scored.scores[scored.labels == label], benign, fpr)
    return out


@dataclass
class ModelResult:
    spec: str
    fit: FitResult
    scored: EvalSet
    evaluation: Evaluation
    seconds: float

    @property
    def other_day_files(self) -> list[str]:
        return other_day_files(self.fit.files, self.fit.training_files, self.fit.order)

    def recall_at_other_day_fpr(self) -> dict:
        return recall_at_other_day_fpr(self.scored, self.other_day_files)

    def row(self) -> dict:
        """One leaderboard line; the recall@1%FPR columns (other-day benign) stand beside AUROC,
        overall and per label, only when the test data holds other-day benign flows."""
        e = self.evaluation
        at_fpr = self.recall_at_other_day_fpr()
        row = {"model": self.spec, "auroc": e.auroc}
        if at_fpr:
            row[RECALL_AT_FPR] = at_fpr[""]
        row.update({"auprc": e.auprc, "f1": e.f1,
                    "precision": e.precision, "recall": e.recall, "fpr": e.fpr,
                    "window_auroc": e.window.get("auroc", math.nan), "threshold": e.threshold,
                    "epochs": len(self.fit.train.history), "best_epoch": self.fit.train.best_epoch,
                    "seconds": round(self.seconds, 1)})
        if e.entity.get("available"):
            row.update({"entity_auroc": e.entity["auroc"], "entity_recall@budget": e.entity["recall_at_budget"],
                        "benign_hosts_flagged_per_night": e.entity["benign_flagged_per_night"]})
        row.update({f"recall {k}": v for k, v in e.recall_per_label.items()})
        for label, auroc in e.auroc_per_label.items():
            row[f"auroc {label}"] = auroc
            if label in at_fpr:
                row[f"{RECALL_AT_FPR} {label}"] = at_fpr[label]
        return row


def run_model(spec: str, job: TrainJob, on_epoch=None, progress: bool = False) -> ModelResult:
    """Train, calibrate and evaluate one model of the comparison on the job's data."""
    started = time.perf_counter()
    fit = fit_detector(job_for(spec, job), on_epoch=on_epoch, progress=progress)
    scored = score_test(fit.detector, fit.data)
    settings = load_settings()
    result = evaluate(scored.scores, scored.labels, fit.detector.threshold, scored.window_scores,
                      scored.window_labels,
                      entity=scored.entity_evaluation(fit.detector, settings.host_budget, settings.host_max_rate))
    return ModelResult(spec, fit, scored, result, time.perf_counter() - started)


def leaderboard(rows: list[dict]) -> pd.DataFrame:
    """Rows sorted by AUROC, best first."""
    frame = pd.DataFrame(rows)
    return frame.sort_values("auroc", ascending=False, na_position="last").reset_index(drop=True)
