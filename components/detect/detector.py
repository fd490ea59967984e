"""A detector: everything needed to turn CIC-IDS2017 rows into per-flow anomaly scores and flags.

It bundles the contract version, the fitted feature transform, the network's weights (or a
baseline's fitted state), the window length, the per-flow scoring rule, the calibrated threshold
and the training reference used for drift. It saves to a folder of JSON files plus a
``state_dict.pt`` loaded with ``weights_only=True`` (no pickled classes: reading the folder runs
no stored code), and it is what the MLflow pyfunc wraps (loading *that* runs its stored code:
``serve/pyfunc_model``).

Input rows may be raw (any published header variant: leading spaces, ``Fwd Header Length.1``,
``Infinity`` text) or curated; output keeps their order and count: no row is dropped, none gets
a NaN score. Rows are scored in runs of one file (``source_file`` when present), each run's
windows never reaching into another file.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict

from components.data.contract import load_contract
from components.data.logs import typed_rows
from components.detect.calibration import Calibration
from components.detect.flow_scores import FlowScorer, ScoredFlows
from components.detect.host_windows import score_by_host
from components.jobs import FlowRule
from components.learn.features import FeatureTransform
from components.learn.models import BASELINES, build_model

OUTPUT_COLUMNS = ("anomaly_score", "is_anomaly", "top_feature_1", "top_feature_2", "top_feature_3")


class ModelRecord(BaseModel):
    """What a detector records of how it was made (``Detector.info``, "info" in detector.json): the
    contract between training, which writes it, and ``evaluate`` and ``promote``, which re-derive
    the model's test flows from it (``components.detect.holdout.check_recorded_data``, ``fitted_flows``).

    Training writes the first group (``fit.train_detector``), preparation the second
    (``fit.JobData.record``). Every field is optional: records saved before a field existed load
    as they are (no ``file_digests``: the aggregate ``data_digest`` vouches for the files), and
    keys of records written by other versions are kept (``extra="allow"``), so a load and save
    writes the same JSON keys (only the fields set, :meth:`as_json`).
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    # training
    train: dict[str, Any] | None = None  # the TrainConfig, as logged (MLflow params)
    device: str | None = None
    best_epoch: int | None = None
    best_val_loss: float | None = None
    # data
    data_dir: str | None = None  # the ingest folder (resolved)
    files: list[str] = []  # every curated file of the job, in capture order
    training_files: list[str] = []  # the ones it was fitted and calibrated on
    file_order: dict[str, Any] | None = None  # ``FileOrder.to_dict()``
    data_digest: str | None = None  # over every file's sha256
    file_digests: dict[str, str] = {}  # sha256 per file name
    split: dict[str, Any] | None = None  # ``SplitConfig`` fields
    split_counts: dict[str, dict[str, int]] = {}  # role -> {"flows": n, "benign": n}

    @classmethod
    def of(cls, record: ModelRecord | dict | None) -> ModelRecord:
        return record if isinstance(record, ModelRecord) else cls.model_validate(record or {})

    def merged(self, other: ModelRecord | dict) -> ModelRecord:
        """This record with the fields ``other`` sets (training's record + the data's)."""
        return type(self).model_validate({**self.as_json(), **ModelRecord.of(other).as_json()})

    def as_json(self) -> dict[str, Any]:
        """The fields set, as stored in detector.json."""
        return self.model_dump(exclude_unset=True)


@dataclass
class Detector:
    name: str  # model family or baseline
    model: Any
    transform: FeatureTransform
    window: int
    rule: FlowRule
    calibration: Calibration | None  # None until calibrated
    contract_version: str
    reference: dict = field(default_factory=dict)
    info: ModelRecord = field(default_factory=ModelRecord)  # how it was made: training, data, split

    def __post_init__(self) -> None:
        self.info = ModelRecord.of(self.info)  # a plain dict (an older caller, a test) validates

    # --- scoring -----------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        return self.transform.feature_names

    @property
    def threshold(self) -> float:
        return self.calibration.threshold

    def scorer(self, keep_feature_errors: bool = False, device: str = "cpu",
               batch_size: int = 4096, start: int = 0) -> FlowScorer:
        """A fresh streaming scorer for one file's (scaled) flows, from file index ``start`` on."""
        score_fn = self.calibration.flow_score_fn() if self.calibration is not None else None
        return FlowScorer(self.model, self.window, self.rule, score_fn,
                          keep_feature_errors=keep_feature_errors, device=device, batch_size=batch_size,
                          start=start)

    @property
    def host_windows(self) -> bool:
        return self.rule.windows == "host"

    def score_sequence(self, x: np.ndarray, hosts: np.ndarray | None = None, times: np.ndarray | None = None,
                       keep_feature_errors: bool = False, device: str = "cpu") -> ScoredFlows:
        """Per-flow scores of one file's scaled flows, with the model's windows: the file's
        consecutive flows, or each source host's (``hosts``, ``times``; ``host_windows``)."""
        if self.host_windows:
            return score_by_host(lambda: self.scorer(keep_feature_errors, device=device), x, hosts, times)
        return self.scorer(keep_feature_errors, device=device).score_all(x)

    def scale(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw or curated rows (any header variant) -> scaled float32 [N, F], typed and scaled
        exactly as ``flowae score`` types and scales a log's rows."""
        return self.transform.scale_rows(typed_rows(frame))

    def score_frame(self, frame: pd.DataFrame, device: str = "cpu") -> ScoredFlows:
        """Per-flow scores of ``frame`` in input order, runs split where ``source_file`` changes."""
        typed = typed_rows(frame)
        x = self.transform.scale_rows(typed)
        hosts, times = identifiers(typed)
        runs = file_runs(frame)
        parts = []
        for lo, hi in runs:
            part = self.score_sequence(x[lo:hi], None if hosts is None else hosts[lo:hi],
                                       None if times is None else times[lo:hi], device=device)
            part.first = lo
            if part.window_starts is not None:
                part.window_starts = part.window_starts + lo
            parts.append(part)
        return ScoredFlows.concat(parts)

    def predict(self, frame: pd.DataFrame, device: str = "cpu") -> pd.DataFrame:
        """``anomaly_score``, ``is_anomaly`` and the top 3 features for every row, in input order."""
        scored = self.score_frame(frame, device=device)
        return self.output_frame(scored, index=frame.index)

    def output_frame(self, scored: ScoredFlows, index=None) -> pd.DataFrame:
        """The ``OUTPUT_COLUMNS`` of scored flows: score, flag, then the names of the top features."""
        names = np.asarray(self.feature_names, dtype=object)
        score, flag, *tops = OUTPUT_COLUMNS
        out = pd.DataFrame({score: scored.scores, flag: scored.scores > self.threshold}, index=index)
        for k, column in enumerate(tops):
            picked = scored.top_features[:, k] if scored.top_features.shape[1] > k else None
            out[column] = names[picked] if picked is not None else None
        return out

    # --- persistence -------------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        spec = {"name": self.name, "window": self.window, "rule": self.rule.model_dump(),
                "calibration": self.calibration.to_dict() if self.calibration else None,
                "contract_version": self.contract_version,
                "reference": self.reference, "info": self.info.as_json()}
        if getattr(self.model, "trainable", True):
            spec["hparams"] = dict(self.model.hparams)
            state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
            torch.save(state, folder / "state_dict.pt")
        else:
            (folder / "baseline.json").write_text(json.dumps(self.model.to_dict()))
        (folder / "detector.json").write_text(json.dumps(spec, indent=2, default=_jsonable))
        self.transform.save(folder / "transform.json")
        return folder

    @classmethod
    def load(cls, folder: Path) -> Detector:
        folder = Path(folder)
        spec = json.loads((folder / "detector.json").read_text())
        if (folder / "baseline.json").is_file():
            model = BASELINES[spec["name"]].from_dict(json.loads((folder / "baseline.json").read_text()))
        else:
            model = build_model(spec["name"], **spec["hparams"])
            state = torch.load(folder / "state_dict.pt", map_location="cpu", weights_only=True)
            model.load_state_dict(state)
            model.eval()
        return cls(name=spec["name"], model=model, transform=FeatureTransform.load(folder / "transform.json"),
                   window=int(spec["window"]), rule=FlowRule(**spec["rule"]),
                   calibration=Calibration.from_dict(spec["calibration"]) if spec["calibration"] else None,
                   contract_version=spec["contract_version"], reference=spec.get("reference", {}),
                   info=ModelRecord.of(spec.get("info")))


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def identifiers(table) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(source host, timestamp) per row of a typed Arrow table, where it has them: what host
    windows group and order by (never model inputs)."""
    hosts = times = None
    if "source_ip" in table.column_names:
        hosts = np.asarray(table.column("source_ip").to_pylist(), dtype=object)
    if "timestamp" in table.column_names:
        times = np.asarray(table.column("timestamp").cast("timestamp[ms]").to_numpy(zero_copy_only=False),
                           dtype="datetime64[ms]")
    return hosts, times


def file_runs(frame: pd.DataFrame) -> list[tuple[int, int]]:
    """Contiguous row ranges of one source file (the whole frame when that column is absent)."""
    n = len(frame)
    if n == 0:
        return []
    if "source_file" not in frame.columns:
        return [(0, n)]
    codes, _ = pd.factorize(frame["source_file"], use_na_sentinel=False)
    cuts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    bounds = [0, *cuts.tolist(), n]
    return list(itertools.pairwise(bounds))


def contract_version() -> str:
    return load_contract().version
