"""From curated files to a calibrated detector and its test scores (no MLflow, no Prefect here).

``fit_detector``: load the flows in time order, split them (``learn.split``), fit the transform
on benign training flows, train the network on benign training windows (early stopping on the
benign validation windows), score the benign calibration flows with the per-flow rule and set
the threshold on them, and keep a bounded drift reference. ``score_runs`` scores any flows the
same way the packaged model does; evaluation and ``compare`` use it on the test flows.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from components.data.capture_order import FileOrder
from components.data.curated import curated_folder, curated_order, select_files
from components.data.readers import sha256_file
from components.detect.calibration import calibrate
from components.detect.detector import Detector, contract_version
from components.detect.drift import build_reference
from components.detect.evaluation import window_labels
from components.detect.flow_scores import FlowRule, ScoredFlows
from components.learn.dataset import (
    CALIBRATION,
    TEST,
    TRAIN,
    VALIDATION,
    FlowSet,
    PreparedData,
    load_flows,
    prepare,
)
from components.learn.split import ROLE_NAMES, SplitConfig, segment_runs, split_flows
from components.learn.training import EpochStats, TrainConfig, TrainResult, train_model


class DetectorConfig(BaseModel):
    """How a trained network becomes a detector: per-flow rule and calibration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: FlowRule = FlowRule()
    calibration: Literal["quantile", "mahalanobis", "pot"] = "quantile"
    mahalanobis_inputs: bool = False  # the error model also sees each flow's own scaled features
    target_fpr: float = Field(default=0.01, gt=0, lt=0.5)
    pot_initial_quantile: float = Field(default=0.98, gt=0.5, lt=1)
    max_calibration_flows: int = Field(default=500_000, ge=100)


class TrainJob(BaseModel):
    """One training job, built once by the CLI and passed whole to the flow."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: Path
    files: tuple[str, ...] = ()
    days: tuple[str, ...] = ()
    train: TrainConfig = TrainConfig()
    split: SplitConfig = SplitConfig()
    detector: DetectorConfig = DetectorConfig()
    register_model: bool = True
    resume: bool = False


@dataclass
class FitResult:
    detector: Detector
    train: TrainResult
    data: PreparedData
    files: list[Path]
    training_files: list[Path]
    order: FileOrder
    digests: list[str]
    calibration_scores: np.ndarray


@dataclass
class EvalSet:
    """Per-flow test scores with labels, and window-level scores with window labels."""

    flow_index: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    files: np.ndarray  # file name per flow
    top_features: np.ndarray
    window_scores: np.ndarray
    window_labels: np.ndarray

    def subset(self, mask: np.ndarray) -> EvalSet:
        return EvalSet(self.flow_index[mask], self.scores[mask], self.labels[mask], self.files[mask],
                       self.top_features[mask], self.window_scores, self.window_labels)


def resolve_files(job: TrainJob) -> tuple[list[Path], list[Path], FileOrder]:
    """All curated files in capture order, the training files among them, and the order."""
    files, order = curated_order(job.data)
    training = select_files(files, list(job.files), list(job.days))
    return files, training, order


def data_digest(digests: list[str]) -> str:
    return hashlib.sha256("".join(digests).encode()).hexdigest()[:16]


@dataclass
class JobData:
    """The prepared flows of a job and where they came from."""

    data: PreparedData
    files: list[Path]
    training_files: list[Path]
    order: FileOrder
    digests: list[str]

    def info(self, job: TrainJob) -> dict:
        """What a detector records about its data (MLflow tags and the model's own record)."""
        return {"data_dir": str(Path(job.data).resolve()), "files": [f.name for f in self.files],
                "training_files": [f.name for f in self.training_files],
                "file_order": self.order.to_dict(), "data_digest": data_digest(self.digests),
                "split": job.split.model_dump(),
                "split_counts": self.data.split.counts(self.data.flows.is_benign)}


def prepare_job(job: TrainJob) -> JobData:
    """Load the job's curated files in capture order, split them, scale them, window them."""
    job.train.check_model()
    files, training_files, order = resolve_files(job)
    digests = [sha256_file(f) for f in files]
    flows = load_flows(files, feature_names=_training_features(training_files))
    in_training = np.isin(flows.file_index, [files.index(f) for f in training_files])
    data = prepare(flows, in_training, job.split, job.train.window, job.train.stride,
                   scaler=job.train.scaler, max_train_windows=job.train.max_train_windows)
    return JobData(data, files, training_files, order, digests)


def train_detector(data: PreparedData, job: TrainJob, checkpoint: Path | None = None,
                   on_epoch: Callable[[EpochStats], None] | None = None, progress: bool = True
                   ) -> tuple[Detector, TrainResult]:
    """Train the network on the benign training windows: a detector not yet calibrated."""
    result = train_model(data.windows, data.train_idx, data.val_idx, job.train, checkpoint=checkpoint,
                         resume=job.resume, on_epoch=on_epoch, progress=progress)
    detector = Detector(name=job.train.model, model=result.model, transform=data.transform,
                        window=job.train.window, rule=job.detector.rule, calibration=None,
                        contract_version=contract_version(),
                        info={"train": job.train.model_dump(mode="json"), "device": result.device,
                              "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss})
    return detector, result


def calibrate_detector(detector: Detector, data: PreparedData, cfg: DetectorConfig, seed: int = 0,
                       device: str = "cpu") -> np.ndarray:
    """Threshold from the benign calibration flows, and the drift reference; returns their scores."""
    mahalanobis = cfg.calibration == "mahalanobis"
    scores, errors, inputs = _benign_scores(detector, data, CALIBRATION, cfg.max_calibration_flows,
                                            keep_errors=mahalanobis, device=device)
    fit_errors = fit_inputs = None
    if mahalanobis:
        _, fit_errors, fit_inputs = _benign_scores(detector, data, VALIDATION, cfg.max_calibration_flows,
                                                   keep_errors=True, device=device)
    use_inputs = mahalanobis and cfg.mahalanobis_inputs
    detector.calibration = calibrate(cfg.calibration, scores, cfg.target_fpr, feature_errors=errors,
                                     pot_initial_quantile=cfg.pot_initial_quantile, fit_errors=fit_errors,
                                     inputs=inputs if use_inputs else None,
                                     fit_inputs=fit_inputs if use_inputs else None)
    if detector.calibration.method == "mahalanobis":
        scores = detector.calibration.flow_score_fn()(errors, scores, inputs)
    train_rows = np.flatnonzero((data.split.roles == TRAIN) & data.flows.is_benign)
    detector.reference = build_reference(data.x[train_rows], detector.feature_names, scores, seed=seed)
    return scores


def fit_detector(job: TrainJob, checkpoint: Path | None = None,
                 on_epoch: Callable[[EpochStats], None] | None = None, progress: bool = True
                 ) -> FitResult:
    """Prepare, train and calibrate in one process (``compare``, benchmarks, tests)."""
    prepared = prepare_job(job)
    detector, result = train_detector(prepared.data, job, checkpoint, on_epoch, progress)
    scores = calibrate_detector(detector, prepared.data, job.detector, seed=job.train.seed,
                                device=result.device)
    detector.info.update(prepared.info(job))
    return FitResult(detector, result, prepared.data, prepared.files, prepared.training_files,
                     prepared.order, prepared.digests, scores)


def _training_features(training_files: list[Path]) -> list[str]:
    from components.data.curated import file_columns
    from components.learn.features import select_features

    return select_features(file_columns(training_files))


def _benign_scores(detector: Detector, data: PreparedData, role: int, limit: int, keep_errors: bool,
                   device: str = "cpu") -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Own per-flow scores, error vectors (if kept) and scaled inputs of the benign flows of one
    split role, at most ``limit``."""
    benign = data.flows.is_benign
    scores, errors, inputs, total = [], [], [], 0
    for run in data.runs(role):
        scorer = detector.scorer(keep_feature_errors=keep_errors, device=device)  # uncalibrated: own scores
        part = scorer.score_all(data.x[run[0]:run[-1] + 1])
        keep = benign[run]
        scores.append(part.scores[keep])
        inputs.append(np.asarray(data.x[run[0]:run[-1] + 1])[keep])
        if keep_errors:
            errors.append(part.feature_errors[keep])
        total += int(keep.sum())
        if total >= limit:
            break
    if not scores or total == 0:
        raise ValueError(f"no benign {ROLE_NAMES[role]} flows: give the training files more benign rows "
                         f"or a larger {ROLE_NAMES[role]} fraction")
    s = np.concatenate(scores)[:limit]
    e = np.concatenate(errors)[:limit] if keep_errors else None
    return s, e, np.concatenate(inputs)[:limit]


def score_runs(detector: Detector, x: np.ndarray, runs: list[np.ndarray], labels: np.ndarray,
               file_names: np.ndarray, device: str = "cpu") -> EvalSet:
    """Score contiguous runs of scaled flows (one file each) the way the packaged model does."""
    parts: list[tuple[np.ndarray, ScoredFlows]] = []
    for run in runs:
        part = detector.scorer(device=device).score_all(x[run[0]:run[-1] + 1])
        parts.append((run, part))
    if not parts:
        empty = np.zeros(0)
        return EvalSet(empty.astype(np.int64), empty, empty.astype(object), empty.astype(object),
                       np.zeros((0, 3), np.int16), empty, empty.astype(object))
    idx = np.concatenate([r for r, _ in parts])
    w_labels = [window_labels(labels[r], p.window_starts, detector.window, len(r)) for r, p in parts]
    return EvalSet(
        flow_index=idx, scores=np.concatenate([p.scores for _, p in parts]), labels=labels[idx],
        files=file_names[idx], top_features=np.concatenate([p.top_features for _, p in parts]),
        window_scores=np.concatenate([p.window_scores for _, p in parts]),
        window_labels=np.concatenate(w_labels))


def score_test(detector: Detector, data: PreparedData, device: str = "cpu") -> EvalSet:
    """Scores of the test flows: the test segment of the training files and every other file."""
    flows = data.flows
    return score_runs(detector, flows.x, data.runs(TEST), flows.labels, _file_names(flows), device)


def evaluate_files(detector: Detector, files: list[Path], device: str = "cpu") -> EvalSet:
    """Every flow of some curated files, scaled by the detector's own transform, one run per file
    (``flowae evaluate``: all the data given is test data)."""
    flows = load_flows(files, feature_names=detector.feature_names)
    flows.x = detector.transform.apply_log(flows.x, flows.feature_names)
    bounds = np.flatnonzero(np.diff(flows.file_index)) + 1
    runs = np.split(np.arange(len(flows)), bounds) if len(flows) else []
    return score_runs(detector, flows.x, runs, flows.labels, _file_names(flows), device)


def evaluate_recorded_test(detector: Detector, info: dict, device: str = "cpu") -> EvalSet:
    """The test flows a detector recorded at training (``info``: folder, files, training files,
    split), re-derived with the same split and scored by ``detector``: how ``promote`` puts a
    challenger and a champion on the same data."""
    folder = curated_folder(Path(info["data_dir"]))
    files = [folder / name for name in info["files"]]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: the evaluation data of this model is gone ({', '.join(missing)})")
    flows = load_flows(files, feature_names=detector.feature_names)
    in_training = np.isin(flows.file_index, [i for i, f in enumerate(files) if f.name in info["training_files"]])
    split = split_flows(flows.is_benign, in_training, SplitConfig(**info["split"]))
    flows.x = detector.transform.apply_log(flows.x, flows.feature_names)
    run_ids = segment_runs(flows.file_index, split.roles)
    test = np.flatnonzero(split.roles == TEST)
    runs = np.split(test, np.flatnonzero(np.diff(run_ids[test])) + 1) if len(test) else []
    return score_runs(detector, flows.x, runs, flows.labels, _file_names(flows), device)


def _file_names(flows: FlowSet) -> np.ndarray:
    return np.asarray([f.name for f in flows.files], dtype=object)[flows.file_index]
