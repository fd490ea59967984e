"""What each stage records in the MLflow run it is given: params, metrics, figures, artifacts.

Every function logs into the *active* run (the flow opened it through ``components.tracking``);
nothing here creates runs or decides where they go.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np

from components.data.contract import BENIGN
from components.detect.detector import Detector
from components.detect.evaluation import Evaluation
from components.detect.fit import JobData
from components.detect.holdout import EvalSet
from components.jobs import TrainJob
from components.learn.dataset import PreparedData
from components.learn.training import EpochStats, TrainResult
from components.report import plots
from components.report.night import FileStats, night_description
from components.report.tables import summary_table
from components.tracking import file_dataset, set_description


def log_job(job: TrainJob, prefix: str = "") -> None:
    """The whole job as flat params (``train.hidden``, ``split.validation``, ...)."""
    flat: dict[str, str] = {}

    def walk(value, key):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else k)
        else:
            flat[key] = str(value)[:6000]

    walk(job.model_dump(mode="json"), "")
    flat.pop("resume", None)
    # one name per setting: the per-flow stride the detector uses (None means "the window")
    flat["detector.rule.stride"] = str(job.detector.rule.stride_for(job.train.window))
    mlflow.log_params({f"{prefix}{k}": v for k, v in flat.items()})
    mlflow.set_tags({"flowae.model": job.train.model})


def log_data(prepared: JobData) -> None:
    """Lineage (every curated file with its sha256), order, split and feature counts."""
    data = prepared.data
    for path, digest in zip(prepared.files, prepared.digests):
        context = "training" if path in prepared.training_files else "test"
        mlflow.log_input(file_dataset(path, digest), context=context)
    counts = data.split.counts(data.flows.is_benign)
    mlflow.log_params({
        "n_features": len(data.transform.feature_names),
        "features": ",".join(data.transform.feature_names)[:6000],
        "dropped_constant": ",".join(data.transform.dropped_constant)[:6000] or "-",
        "dropped_duplicate": ",".join(f"{k}={v}" for k, v in data.transform.dropped_duplicate.items())[:6000]
        or "-",
        "n_flows": len(data.flows), "n_train_windows": len(data.train_idx),
        "n_val_windows": len(data.val_idx),
        **{f"flows.{role}": c["flows"] for role, c in counts.items()},
        **{f"benign_flows.{role}": c["benign"] for role, c in counts.items()},
    })
    mlflow.log_params({"training_files": ", ".join(f.name for f in prepared.training_files)[:6000],
                       "test_files": ", ".join(f.name for f in prepared.files)[:6000]})
    mlflow.set_tags({"flowae.file_order": " > ".join(prepared.order.files)[:5000],
                     "flowae.file_order_method": prepared.order.method,
                     "flowae.file_order_guessed": str(prepared.order.guessed).lower(),
                     "flowae.training_files": ",".join(f.name for f in prepared.training_files)[:5000]})
    mlflow.log_dict(prepared.order.to_dict(), "data/file_order.json")


def epoch_logger() -> Callable[[EpochStats], None]:
    """Each epoch's losses as step metrics: MLflow charts the loss curve from them."""
    def on_epoch(stats: EpochStats) -> None:
        mlflow.log_metrics({"train_loss": stats.train_loss, "val_loss": stats.val_loss,
                            "windows_per_s": stats.windows_per_s, "epoch_seconds": stats.seconds},
                           step=stats.epoch)
    return on_epoch


def log_training(result: TrainResult, data: PreparedData) -> None:
    mlflow.set_tag("flowae.device", result.device)
    mlflow.log_metrics({"best_val_loss": result.best_val_loss, "best_epoch": result.best_epoch,
                        "epochs_run": len(result.history),
                        "stopped_early": float(result.stopped_early)})
    if result.model.name == "lstm_ae_seq":  # it tends to learn the identity: put it beside persistence
        from components.learn.models import persistence_error_ratio

        val = data.windows.take(data.val_idx[:8192])
        mlflow.log_metric("recon_error_vs_persistence", persistence_error_ratio(result.model, val))


def log_calibration(detector: Detector, scores: np.ndarray) -> None:
    cal = detector.calibration
    # the settings are the job's params (detector.calibration, detector.rule.*); what calibration
    # actually did (a fallback may change the method) is a tag, never a second name for a setting
    mlflow.set_tags({"flowae.calibration_method": cal.method})
    mlflow.log_metrics({"threshold": cal.threshold, "calibration_flows": cal.n_flows})
    if cal.fallback:
        mlflow.set_tag("flowae.calibration_fallback", cal.fallback[:5000])
    mlflow.log_dict({k: v for k, v in cal.to_dict().items() if not k.startswith("error_")},
                    "calibration/calibration.json")
    mlflow.log_figure(plots.score_histogram(scores, np.full(len(scores), BENIGN), cal.threshold,
                                            title="Benign calibration scores"),
                      "plots/calibration_scores.png")


def log_evaluation(evalset: EvalSet, evaluation: Evaluation, detector: Detector,
                   reconstructions: tuple | None = None, prefix: str = "test_") -> None:
    """Metrics, the summary as markdown/JSON, ROC, PR, histograms, recall bars, reconstructions."""
    mlflow.log_metrics(evaluation.metrics(prefix))
    mlflow.log_dict(evaluation.to_dict(), "evaluation/evaluation.json")
    mlflow.log_text(summary_table(evaluation), "evaluation/summary.md")
    is_attack = evalset.labels != BENIGN
    mlflow.log_figure(plots.roc_figure({detector.name: (evalset.scores, is_attack)}), "plots/roc.png")
    mlflow.log_figure(plots.pr_figure(evalset.scores, is_attack, detector.threshold), "plots/pr.png")
    reference = np.asarray(detector.reference.get("score", {}).get("sample", []))
    mlflow.log_figure(plots.score_histogram(evalset.scores, evalset.labels, detector.threshold,
                                            reference=reference), "plots/score_histogram.png")
    if evaluation.recall_per_label:
        mlflow.log_figure(plots.recall_bars(evaluation.recall_per_label, evaluation.fpr),
                          "plots/recall_per_label.png")
    if reconstructions is not None:
        mlflow.log_figure(plots.reconstruction_figure(*reconstructions), "plots/reconstructions.png")


def key_figures(name: str, evaluation: Evaluation, training_files: list[str] | None = None,
                test_files: list[str] | None = None) -> str:
    """A run's description: the model's test figures in one glance (markdown)."""
    e = evaluation
    lines = [(f"**{name}**: AUROC {e.auroc:.4f}, AUPRC {e.auprc:.4f}, F1 {e.f1:.4f} at threshold "
              f"{e.threshold:.4g} (precision {e.precision:.4f}, recall {e.recall:.4f}, FPR on benign {e.fpr:.4f}).")]
    if e.recall_per_label:
        lines.append("Recall per attack: " + ", ".join(f"{k} {v:.3f}" for k, v in e.recall_per_label.items()) + ".")
    if training_files:
        lines.append(f"Trained on {', '.join(training_files)}.")
    if test_files:
        lines.append(f"Tested on {', '.join(test_files)} (the training files' later benign part included).")
    return "\n\n".join(lines)


def reconstructions(detector: Detector, x: np.ndarray, evalset: EvalSet, k: int = 3):
    """Inputs and reconstructions of a few test windows (the top-scored attack flows' and a
    typical benign one's), for networks that reconstruct; None for the baselines."""
    import torch

    model = detector.model
    if not hasattr(model, "reconstruct") or len(evalset.scores) == 0:
        return None
    T = detector.window
    picks, titles = [], []
    order = np.argsort(-evalset.scores)
    for label in ("attack", BENIGN):
        mask = (evalset.labels != BENIGN) if label == "attack" else (evalset.labels == BENIGN)
        candidates = order[mask[order]]
        if label == BENIGN and len(candidates):
            candidates = candidates[len(candidates) // 2:]  # a typical one, not the worst
        for i in candidates[: (k - 1 if label == "attack" else 1)]:
            start = max(0, int(evalset.flow_index[i]) - T + 1)
            if start + T <= len(x):
                picks.append(np.asarray(x[start:start + T], np.float32))
                titles.append(f"{evalset.labels[i]} flow {evalset.flow_index[i]} "
                              f"(score {evalset.scores[i]:.3g}, threshold {detector.threshold:.3g})")
    if not picks:
        return None
    inputs = np.stack(picks)
    model.eval()
    with torch.no_grad():
        recon = model.reconstruct(torch.from_numpy(inputs)).float().numpy()
    return inputs, recon, detector.feature_names, titles


def log_night(summary: dict, night: FileStats, detector: Detector, summary_path: Path) -> None:
    """What a scoring run records of its night (the active run): the headline and hosts as its
    description, counts and drift as metrics, the summary and entity tables, and the histogram,
    anomalies-over-time and drift figures."""
    set_description(night_description(summary))
    ok = [f for f in summary["files"] if f["status"] == "ok"]
    mlflow.log_metrics({"flows": summary["flows"], "anomalies": summary["anomalies"], "rate": summary["rate"],
                        "files_ok": len(ok), "files_failed": len(summary["files"]) - len(ok),
                        "rows_with_input_problems": summary["rows_with_input_problems"],
                        "files_missing_features": sum(bool(f.get("missing_features")) for f in ok)})
    gaps = {f["source"]: {"missing_columns": f["missing_columns"], "missing_features": f["missing_features"]}
            for f in ok if f.get("missing_columns")}
    if gaps:
        mlflow.log_dict(gaps, "scoring/missing_columns.json")
        mlflow.set_tag("flowae.missing_columns", "; ".join(
            f"{Path(k).name}: {', '.join(v['missing_columns'])}" for k, v in gaps.items())[:5000])
    mlflow.log_artifact(str(summary_path), "scoring")
    entities = summary.get("entities") or {}
    if entities.get("available"):
        mlflow.log_metrics({"hosts_flagged": entities["hosts"]["flagged"], "hosts_ranked": entities["hosts"]["ranked"],
                            "pairs_flagged": entities["pairs"]["flagged"]})
        mlflow.log_dict(entities, "scoring/entities.json")
        mlflow.set_tag("flowae.hosts_flagged", ", ".join(
            r["entity"] for r in entities["hosts"]["table"] if r["flagged"])[:5000] or "none")
    reference = detector.reference.get("score", {}).get("sample", [])
    mlflow.log_figure(plots.night_histogram(night.hist, reference, detector.threshold),
                      "plots/score_histogram.png")
    if summary["by_hour"]:
        mlflow.log_figure(plots.anomalies_over_time(summary["by_hour"]), "plots/anomalies_over_time.png")
    drift = summary.get("drift")
    if drift:
        mlflow.log_metrics({"drift.score_psi": drift["score_psi"],
                            "drift.features_shifted": len(drift["shifted_features"]),
                            **{f"drift.psi.{k}": v for k, v in drift["feature_psi"].items()}})
        mlflow.log_figure(plots.drift_bars(drift["feature_psi"]), "plots/feature_drift.png")
        if drift["warning"]:
            mlflow.set_tag("flowae.drift_warning", drift["warning"][:5000])


def retrain_description(summary: dict, evaluation_md: str, registry_link: str) -> str:
    """The parent run's description: the decision, then the evaluation summary (markdown)."""
    decision = ("promoted to champion" if summary["promoted"]
                else f"not promoted ({summary['decision']}); champion stays version {summary['champion']}")
    return (f"**{summary['model']}**: test AUROC {summary['test_auroc']:.4f}, F1 {summary['test_f1']:.4f}, "
            f"FPR on benign {summary['test_fpr']:.4f} at threshold {summary['threshold']:.4g}; registered as "
            f"[version {summary['version']}]({registry_link}), {decision}.\n\n{evaluation_md}")
