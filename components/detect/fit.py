"""From curated files to a calibrated detector (no MLflow, no Prefect here).

``fit_detector``: load the flows in time order, split them (``learn.split``), fit the transform
on benign training flows, train the network on benign training windows (early stopping on the
benign validation windows), score the benign calibration flows with the per-flow rule and set
the threshold on them, and keep a bounded drift reference. What the model is then evaluated on
is ``holdout``'s job.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.data.capture_order import FileOrder
from components.data.curated import (
    curated_order,
    select_files,
)
from components.data.readers import sha256_file
from components.detect.calibration import calibrate
from components.detect.detector import Detector, ModelRecord, contract_version
from components.detect.drift import build_reference
from components.detect.entities import (
    calibrate_entities,
)
from components.detect.holdout import data_digest, run_identifiers
from components.jobs import DetectorConfig, TrainJob
from components.learn.dataset import (
    CALIBRATION,
    VALIDATION,
    PreparedData,
    load_flows,
    prepare,
)
from components.learn.split import ROLE_NAMES
from components.learn.training import EpochStats, TrainResult, check_model, train_model


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


def resolve_files(job: TrainJob) -> tuple[list[Path], list[Path], FileOrder]:
    """All curated files in capture order, the training files among them, and the order."""
    files, order = curated_order(job.data)
    training = select_files(files, list(job.files), list(job.days))
    return files, training, order


@dataclass
class JobData:
    """The prepared flows of a job and where they came from."""

    data: PreparedData
    files: list[Path]
    training_files: list[Path]
    order: FileOrder
    digests: list[str]

    def record(self, job: TrainJob) -> ModelRecord:
        """What a detector records about its data (MLflow tags and the model's own record)."""
        return ModelRecord(data_dir=str(Path(job.data).resolve()), files=[f.name for f in self.files],
                           training_files=[f.name for f in self.training_files],
                           file_order=self.order.to_dict(), data_digest=data_digest(self.digests),
                           file_digests={f.name: d for f, d in zip(self.files, self.digests)},
                           split=job.split.model_dump(),
                           split_counts=self.data.split.counts(self.data.flows.is_benign))


def prepare_job(job: TrainJob) -> JobData:
    """Load the job's curated files in capture order, split them, scale them, window them."""
    check_model(job.train)
    files, training_files, order = resolve_files(job)
    digests = [sha256_file(f) for f in files]
    flows = load_flows(files, feature_names=_training_features(training_files))
    in_training = np.isin(flows.file_index, [files.index(f) for f in training_files])
    data = prepare(flows, in_training, job.split, job.train.window, job.train.stride,
                   scaler=job.train.scaler, max_train_windows=job.train.max_train_windows,
                   host_windows=job.detector.rule.windows == "host")
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
                        info=ModelRecord(train=job.train.model_dump(mode="json"), device=result.device,
                                         best_epoch=result.best_epoch, best_val_loss=result.best_val_loss))
    return detector, result


def calibrate_detector(detector: Detector, data: PreparedData, cfg: DetectorConfig, seed: int = 0,
                       device: str = "cpu") -> np.ndarray:
    """Threshold from the benign calibration flows, and the drift reference; returns their scores."""
    mahalanobis = cfg.calibration == "mahalanobis"
    hosts: list[np.ndarray] = []
    scores, errors, inputs = _benign_scores(detector, data, CALIBRATION, cfg.max_calibration_flows,
                                            keep_errors=mahalanobis, device=device, hosts=hosts)
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
    # entities: the same benign calibration flows, grouped by source host where known
    detector.calibration.entity = calibrate_entities(
        scores, hosts=np.concatenate(hosts)[:len(scores)], rule=cfg.entity).to_dict()
    # one reference period for drift, features and scores alike: these benign calibration flows,
    # those under the threshold (a night is measured on the flows the champion does not flag)
    detector.reference = build_reference(inputs, detector.feature_names, scores, seed=seed,
                                         threshold=detector.threshold)
    return scores


def fit_detector(job: TrainJob, checkpoint: Path | None = None,
                 on_epoch: Callable[[EpochStats], None] | None = None, progress: bool = True
                 ) -> FitResult:
    """Prepare, train and calibrate in one process (``compare``, benchmarks, tests)."""
    prepared = prepare_job(job)
    detector, result = train_detector(prepared.data, job, checkpoint, on_epoch, progress)
    scores = calibrate_detector(detector, prepared.data, job.detector, seed=job.train.seed,
                                device=result.device)
    detector.info = detector.info.merged(prepared.record(job))
    return FitResult(detector, result, prepared.data, prepared.files, prepared.training_files,
                     prepared.order, prepared.digests, scores)


def _training_features(training_files: list[Path]) -> list[str]:
    from components.data.curated import file_columns
    from components.learn.features import select_features

    return select_features(file_columns(training_files))


def _benign_scores(detector: Detector, data: PreparedData, role: int, limit: int, keep_errors: bool,
                   device: str = "cpu", hosts: list | None = None
                   ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Own per-flow scores, error vectors (if kept) and scaled inputs of the benign flows of one
    split role, at most ``limit``; their source hosts (float codes, NaN unknown) go to ``hosts``."""
    benign = data.flows.is_benign
    codes = data.flows.host_codes
    scores, errors, inputs, total = [], [], [], 0
    for run in data.runs(role):
        hosts_of, times_of = run_identifiers(data.flows, run)
        part = detector.score_sequence(data.x[run[0]:run[-1] + 1], hosts_of, times_of,  # uncalibrated: own scores
                                       keep_feature_errors=keep_errors, device=device)
        keep = benign[run]
        scores.append(part.scores[keep])
        inputs.append(np.asarray(data.x[run[0]:run[-1] + 1])[keep])
        if hosts is not None:
            part_hosts = codes[run][keep].astype(np.float64) if codes is not None else np.full(int(keep.sum()), np.nan)
            hosts.append(np.where(part_hosts >= 0, part_hosts, np.nan))
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
