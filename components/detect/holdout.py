"""The flows a model is evaluated on, and their scores (no MLflow, no Prefect here).

``score_runs`` scores any flows the same way the packaged model does; ``score_test`` (training,
``compare``), ``evaluate_data`` (``flowae evaluate`` on other data) and ``evaluate_recorded_test``
(promotion) use it on the flows an evaluation counts.

Which flows an evaluation counts (DESIGN.md: a model is never evaluated on flows it was fitted or
calibrated on): the benign flows of the test segment and of files outside the training files, and
*every* attack flow wherever it lies (no model is fitted on attack flows: training windows and
calibration use benign flows only). The benign train/validation/calibration flows are left out.
Scoring still runs over each whole file, so a test flow's windows may reach back into training
flows (as they do at night); only the counted flows and the windows made of counted flows enter
the metrics. A model's record (``ModelRecord``) names its folder, files, training files, split and
the sha256 of every file, so that split can be re-derived later, on the same bytes, or refused
(:class:`DataChanged`) when the bytes moved.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from components.data.curated import (
    CuratedDataError,
    curated_files,
    curated_folder,
)
from components.data.readers import sha256_file
from components.detect.detector import Detector, ModelRecord
from components.detect.entities import (
    EntityCalibration,
    entity_evaluation,
)
from components.detect.evaluation import window_labels
from components.jobs import SplitConfig
from components.learn.dataset import (
    TEST,
    FlowSet,
    PreparedData,
    load_flows,
)
from components.learn.split import ROLE_NAMES, split_flows


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
    left_out: LeftOut | None = None  # what was not counted and why (``evaluate_*`` fill it)
    row_number: np.ndarray | None = None  # 1-based row in its file, where known
    hosts: np.ndarray | None = None  # source host per flow (None where unknown), for entity figures
    nights: np.ndarray | None = None  # capture day per flow (its timestamp's date, else its file)

    def entity_evaluation(self, detector: Detector, budget: float = 1.0, max_rate: float = 0.05) -> dict:
        """Entity AUROC and recall at the host budget of these test flows (``entities``)."""
        calibration = EntityCalibration.from_dict(detector.calibration.entity if detector.calibration else None)
        nights = self.nights if self.nights is not None else self.files
        return entity_evaluation(self.scores, self.labels, self.hosts, nights, calibration, budget, max_rate)

    def subset(self, mask: np.ndarray) -> EvalSet:
        rows = self.row_number[mask] if self.row_number is not None else None
        pick = (lambda a: a[mask] if a is not None else None)
        return EvalSet(self.flow_index[mask], self.scores[mask], self.labels[mask], self.files[mask],
                       self.top_features[mask], self.window_scores, self.window_labels, self.left_out, rows,
                       pick(self.hosts), pick(self.nights))


class DataChanged(RuntimeError):
    """A file a model recorded is not the file on disk now: its sha256 differs from the record
    (per file when the record has ``file_digests``, else the aggregate ``data_digest``), or it is
    gone. A missing file or folder is folded in here (it used to be a ``FileNotFoundError``): to a
    caller both mean "the recorded test set cannot be rebuilt". The message is one line naming
    the file(s)."""


@dataclass
class LeftOut:
    """Flows an evaluation did not count, per file, and why; ``included`` when the user asked to
    count the model's training flows anyway (``--include-training-data``)."""

    flows: int = 0
    per_file: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    included: bool = False

    def line(self) -> str:
        """One line for the terminal, the run and the artifact."""
        files = ", ".join(f"{k} {v}" for k, v in self.per_file.items())
        if self.included:
            return (f"includes training data: {self.flows} flows the model was fitted or calibrated "
                    f"on are counted ({files or 'none in this data'}; --include-training-data)")
        if not self.flows:
            return "left out 0 flows: no flow of this data was fitted or calibrated on"
        return (f"left out {self.flows} flows fitted or calibrated on (benign train/validation/"
                f"calibration flows: {files})")


def data_digest(digests: list[str]) -> str:
    return hashlib.sha256("".join(digests).encode()).hexdigest()[:16]


def score_runs(detector: Detector, x: np.ndarray, runs: list[np.ndarray], labels: np.ndarray,
               file_names: np.ndarray, device: str = "cpu", counted: np.ndarray | None = None,
               flow_set: FlowSet | None = None) -> EvalSet:
    """Score contiguous runs of scaled flows (one file each) the way the packaged model does.

    ``counted`` (one flag per flow of ``x``) keeps only those flows, and only the windows whose
    real flows are all counted; the others still give the counted flows their context.
    ``flow_set`` (the flows of ``x``) gives host windows their hosts and timestamps.
    """
    flows, scores, tops, w_scores, w_labels = [], [], [], [], []
    for run in runs:
        hosts_of, times_of = run_identifiers(flow_set, run) if flow_set is not None else (None, None)
        part = detector.score_sequence(x[run[0]:run[-1] + 1], hosts_of, times_of, device=device)
        n = len(run)
        keep = np.ones(n, bool) if counted is None else np.asarray(counted[run], bool)
        starts = part.window_starts
        skipped = np.r_[0, np.cumsum(~keep)]
        lo, hi = np.clip(starts, 0, n), np.clip(starts + detector.window, 0, n)
        w_keep = (skipped[hi] - skipped[lo]) == 0
        flows.append(run[keep])
        scores.append(part.scores[keep])
        tops.append(part.top_features[keep])
        w_scores.append(part.window_scores[w_keep])
        w_labels.append(window_labels(labels[run], starts, detector.window, n)[w_keep])
    if not flows:
        empty = np.zeros(0)
        return EvalSet(empty.astype(np.int64), empty, empty.astype(object), empty.astype(object),
                       np.zeros((0, 3), np.int16), empty, empty.astype(object))
    idx = np.concatenate(flows)
    return EvalSet(flow_index=idx, scores=np.concatenate(scores), labels=labels[idx],
                   files=file_names[idx], top_features=np.concatenate(tops),
                   window_scores=np.concatenate(w_scores), window_labels=np.concatenate(w_labels))


def score_test(detector: Detector, data: PreparedData, device: str = "cpu") -> EvalSet:
    """Scores of the test flows of a prepared job: benign flows of the test segment and of every
    other file, and attack flows of every segment; each file scored whole (see the module doc)."""
    flows = data.flows
    counted = (data.split.roles == TEST) | ~flows.is_benign
    scored = _score_counted(detector, flows, counted, device)
    scored.left_out = _left_out(flows, ~counted, [])
    return scored


def evaluate_data(detector: Detector, data_dir: Path, include_training_data: bool = False,
                  device: str = "cpu") -> EvalSet:
    """``flowae evaluate``: every curated file of ``data_dir``, less the flows the detector was
    fitted or calibrated on (files it recorded as training files, same name *and* sha256, with its
    split re-derived); files it never saw count whole. ``include_training_data`` counts them too;
    ``EvalSet.left_out`` says what was (or would have been) left out."""
    files = curated_files(Path(data_dir))
    digests = _Digests()
    flows = _load_scaled(detector, files)
    fitted, notes = fitted_flows(detector.info, flows, digests)
    left = _left_out(flows, fitted, notes)
    left.included = include_training_data
    counted = np.ones(len(flows), bool) if include_training_data else ~fitted
    scored = _score_counted(detector, flows, counted, device)
    scored.left_out = left
    return scored


def evaluate_recorded_test(detector: Detector, info: ModelRecord | dict, device: str = "cpu",
                           exclude: Sequence[ModelRecord | dict] = ()) -> EvalSet:
    """Score ``detector`` on the test flows of the record ``info`` (a detector's ``info``: folder,
    files, training files, split, digests), re-derived on the same bytes.

    The test flows are those :func:`score_test` counts for that record (benign test-segment and
    non-training-file flows, attack flows of every segment). Every flow that a record in
    ``exclude`` fitted or calibrated on is left out as well (matched by file name and sha256, that
    record's split re-derived over its own recorded files), so ``promote`` compares champion and
    challenger on flows neither saw::

        evaluate_recorded_test(challenger, challenger.info, exclude=[champion.info])
        evaluate_recorded_test(champion, challenger.info, exclude=[champion.info])

    Raises :class:`DataChanged` (one line naming the files) when a file of ``info`` is gone or its
    sha256 differs from the record. ``EvalSet.left_out`` counts the flows not counted.
    """
    digests = _Digests()
    files = check_recorded_data(info, digests)
    flows = _load_scaled(detector, files)
    fitted, notes = fitted_flows(info, flows, digests)
    for record in exclude:
        theirs, their_notes = fitted_flows(record, flows, digests)
        fitted |= theirs
        notes += their_notes
    scored = _score_counted(detector, flows, ~fitted, device)
    scored.left_out = _left_out(flows, fitted, notes)
    return scored


def check_recorded_data(info: ModelRecord | dict, digests: _Digests | None = None) -> list[Path]:
    """The recorded files of ``info``, in recorded order, after checking that each one is there
    and still has its recorded sha256 (per file, or the aggregate for older records); else
    :class:`DataChanged`."""
    info = ModelRecord.of(info)
    digests = digests or _Digests()
    if info.data_dir is None:
        raise DataChanged("the model's record names no data folder: its test flows cannot be re-derived")
    data_dir = Path(info.data_dir)
    try:
        folder = curated_folder(data_dir)
    except CuratedDataError as exc:
        raise DataChanged(f"{data_dir}: the data this model was trained and tested on is gone ({exc})") from exc
    files = [folder / name for name in info.files]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise DataChanged(f"{folder}: the data this model was trained and tested on is gone "
                          f"({', '.join(missing)})")
    recorded = info.file_digests
    if recorded:
        changed = [f.name for f in files if digests(f) != recorded.get(f.name)]
        if changed:
            raise DataChanged(f"{folder}: data changed since the model was trained: {', '.join(changed)} "
                              f"(sha256 differs from the model's record)")
    elif data_digest([digests(f) for f in files]) != info.data_digest:
        raise DataChanged(f"{folder}: data changed since the model was trained: one of "
                          f"{', '.join(f.name for f in files)} (data digest differs from the model's record)")
    return files


def fitted_flows(record: ModelRecord | dict, flows: FlowSet, digests: _Digests | None = None
                 ) -> tuple[np.ndarray, list[str]]:
    """Which ``flows`` the model of ``record`` was fitted or calibrated on, and notes on how that
    was decided.

    Those are the benign train/validation/calibration flows of the files it recorded as training
    files. A file here counts as one of them when its name *and* sha256 match the record; the
    record's split is then re-derived over all its recorded training files (read here when they
    are among ``flows``, else from the record's own folder) and checked against the recorded
    split counts. When that is impossible (a training file is gone or changed elsewhere, a record
    without per-file digests whose aggregate no longer matches, counts that disagree) every
    benign flow of the matching files is treated as fitted: leaving out too much, never too little.
    """
    record = ModelRecord.of(record)
    digests = digests or _Digests()
    mask = np.zeros(len(flows), bool)
    notes: list[str] = []
    chosen = set(record.training_files)
    training = [n for n in record.files if n in chosen]
    recorded = _recorded_digests(record, digests)
    here: dict[str, int] = {}
    for i, f in enumerate(flows.files):
        if f.name not in chosen:
            continue
        if recorded is not None and digests(f) != recorded.get(f.name):
            notes.append(f"{f.name}: named like a training file of the model but other content: counted "
                         f"as unseen data")
            continue
        here[f.name] = i
    if not here:
        return mask, notes
    benign = flows.is_benign
    parts = _training_benign(record, training, here, flows, recorded, digests)
    split = None
    if parts is not None and record.split is not None:
        split = split_flows(np.concatenate(parts), np.ones(sum(map(len, parts)), bool),
                            SplitConfig(**record.split))
        counts = record.split_counts
        derived = split.counts(np.concatenate(parts))
        if any(counts.get(r, derived[r]) != derived[r] for r in ROLE_NAMES[:3]):
            split = None
    if split is None:
        notes.append("the model's split cannot be re-derived on these bytes: every benign flow of "
                     f"{', '.join(here)} is left out")
        for i in here.values():
            mask |= (flows.file_index == i) & benign
        return mask, notes
    lo = 0
    for name, part in zip(training, parts):
        hi = lo + len(part)
        if name in here:
            rows = np.flatnonzero(flows.file_index == here[name])
            mask[rows] = benign[rows] & (split.roles[lo:hi] != TEST)
        lo = hi
    return mask, notes


class _Digests:
    """sha256 per path, each file hashed once per evaluation."""

    def __init__(self) -> None:
        self._known: dict[Path, str] = {}

    def __call__(self, path: Path) -> str:
        key = Path(path).resolve()
        if key not in self._known:
            self._known[key] = sha256_file(key)
        return self._known[key]


def _recorded_digests(record: ModelRecord, digests: _Digests) -> dict[str, str] | None:
    """The record's sha256 per file; for records made before ``file_digests``, the files in its
    own folder when their aggregate matches ``data_digest``; None when neither can be had."""
    if record.file_digests:
        return dict(record.file_digests)
    try:
        return {f.name: digests(f) for f in check_recorded_data(record, digests)}
    except DataChanged:
        return None


def _training_benign(record: ModelRecord, training: list[str], here: dict[str, int], flows: FlowSet,
                     recorded: dict[str, str] | None, digests: _Digests) -> list[np.ndarray] | None:
    """Benign flags of each recorded training file, in recorded order, read from the same bytes
    the record names; None when one of them cannot be found with its recorded digest."""
    if recorded is None:
        return None
    parts = []
    for name in training:
        if name in here:
            parts.append(flows.is_benign[flows.file_index == here[name]])
            continue
        try:
            path = curated_folder(Path(record.data_dir)) / name
        except (CuratedDataError, TypeError):  # its folder is gone, or the record names none
            return None
        if not path.is_file() or digests(path) != recorded.get(name):
            return None
        parts.append(load_flows([path], feature_names=[]).is_benign)
    return parts


def _left_out(flows: FlowSet, fitted: np.ndarray, notes: list[str]) -> LeftOut:
    names = _file_names(flows)[fitted]
    per_file = {str(k): int(v) for k, v in zip(*np.unique(names, return_counts=True))} if len(names) else {}
    return LeftOut(int(fitted.sum()), per_file, notes)


def _load_scaled(detector: Detector, files: list[Path]) -> FlowSet:
    """Curated files as flows scaled by the detector's own transform."""
    flows = load_flows(files, feature_names=detector.feature_names)
    flows.x = detector.transform.apply_log(flows.x, flows.feature_names)
    return flows


def _score_counted(detector: Detector, flows: FlowSet, counted: np.ndarray, device: str) -> EvalSet:
    """Each file that has a counted flow, scored whole; the counted flows kept."""
    bounds = np.flatnonzero(np.diff(flows.file_index)) + 1
    runs = np.split(np.arange(len(flows)), bounds) if len(flows) else []
    runs = [r for r in runs if counted[r].any()]
    scored = score_runs(detector, flows.x, runs, flows.labels, _file_names(flows), device, counted=counted,
                        flow_set=flows)
    scored.row_number = np.asarray(flows.row_number)[scored.flow_index]
    scored.hosts, scored.nights = _hosts_and_nights(flows, scored.flow_index)
    return scored


def _file_names(flows: FlowSet) -> np.ndarray:
    return np.asarray([f.name for f in flows.files], dtype=object)[flows.file_index]


def _hosts_and_nights(flows: FlowSet, index: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Source host (None unknown) and capture day (timestamp's date, else the file) of flows."""
    files = _file_names(flows)[index]
    nights = files.astype(object)
    if flows.timestamp is not None:
        stamps = flows.timestamp[index]
        known = ~np.isnat(stamps)
        nights[known] = stamps[known].astype("datetime64[D]").astype(str)
    if flows.host_codes is None or flows.host_names is None:
        return None, nights
    codes = flows.host_codes[index]
    names = np.asarray(list(flows.host_names) + [None], dtype=object)
    return names[np.where(codes >= 0, codes, len(names) - 1)], nights


def run_identifiers(flows: FlowSet, run: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Host codes (NaN unknown) and timestamps of a contiguous run of flows, for host windows."""
    lo, hi = run[0], run[-1] + 1
    hosts = None
    if flows.host_codes is not None:
        codes = flows.host_codes[lo:hi].astype(np.float64)
        hosts = np.where(codes >= 0, codes, np.nan)
    return hosts, (flows.timestamp[lo:hi] if flows.timestamp is not None else None)
