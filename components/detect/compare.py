"""Every model on the same data, split and budget, evaluated identically: the leaderboard.

``flowae compare`` and ``benchmarks/quality.py`` both run models through :func:`run_model`, so
the benchmark measures exactly what users compare. Besides the five families and the three
window baselines, two single-flow baselines (``isolation_forest_flow``, ``pca_flow``: the same
baselines on windows of one flow) answer "does the sequence help at all?", and
``iae_lstm_svdd`` (IAE-LSTM-KL without the KL term) answers "does the KL help?".
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import pandas as pd

from components.detect.evaluation import Evaluation, evaluate
from components.detect.fit import EvalSet, FitResult, TrainJob, fit_detector, score_test
from components.learn.models import BASELINE_NAMES, MODEL_NAMES

#: name in a comparison -> (model, overrides of the job's training config)
SPECS: dict[str, tuple[str, dict]] = {
    **{m: (m, {}) for m in MODEL_NAMES + BASELINE_NAMES},
    "isolation_forest_flow": ("isolation_forest", {"window": 1, "stride": 1}),
    "pca_flow": ("pca", {"window": 1, "stride": 1}),
    # ablation: IAE-LSTM-KL without its KL term, i.e. a plain LSTM autoencoder with deep SVDD
    "iae_lstm_svdd": ("iae_lstm_kl", {"model_kwargs": {"lambda_kl": 0.0}}),
}
ALL = tuple(SPECS)


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


@dataclass
class ModelResult:
    spec: str
    fit: FitResult
    scored: EvalSet
    evaluation: Evaluation
    seconds: float

    def row(self) -> dict:
        e = self.evaluation
        row = {"model": self.spec, "auroc": e.auroc, "auprc": e.auprc, "f1": e.f1,
               "precision": e.precision, "recall": e.recall, "fpr": e.fpr,
               "window_auroc": e.window.get("auroc", math.nan), "threshold": e.threshold,
               "epochs": len(self.fit.train.history), "best_epoch": self.fit.train.best_epoch,
               "seconds": round(self.seconds, 1)}
        row.update({f"recall {k}": v for k, v in e.recall_per_label.items()})
        row.update({f"auroc {k}": v for k, v in e.auroc_per_label.items()})
        return row


def run_model(spec: str, job: TrainJob, on_epoch=None, progress: bool = False) -> ModelResult:
    """Train, calibrate and evaluate one model of the comparison on the job's data."""
    started = time.perf_counter()
    fit = fit_detector(job_for(spec, job), on_epoch=on_epoch, progress=progress)
    scored = score_test(fit.detector, fit.data)
    result = evaluate(scored.scores, scored.labels, fit.detector.threshold, scored.window_scores,
                      scored.window_labels)
    return ModelResult(spec, fit, scored, result, time.perf_counter() - started)


def leaderboard(rows: list[dict]) -> pd.DataFrame:
    """Rows sorted by AUROC, best first."""
    frame = pd.DataFrame(rows)
    return frame.sort_values("auroc", ascending=False, na_position="last").reset_index(drop=True)


def to_markdown(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _cell(value) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4f}"
    return str(value)
