"""Every job flowae runs, as one frozen, typed object built once (from CLI options or a YAML file)
and passed whole from the CLI through the flows into ``components``.

Why here, beside ``settings``: the CLI, the flows, the benchmarks and the tests build the same
objects, so a job's defaults are written once, and a misspelt field fails where it is written
(``extra="forbid"``), not three stages later.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

FROZEN = ConfigDict(frozen=True, extra="forbid")


class TrainConfig(BaseModel):
    """Everything that decides a training run; logged as MLflow params.

    The defaults are the recommended model and budget, the ones ``train``, ``retrain``, ``compare``,
    ``serve`` and ``demo`` use unless told otherwise: the best of ``benchmarks/quality.py``
    (docs/BENCHMARKS.md has the tables behind it). Why these: with the recommended detector rule
    (``DetectorConfig``) the plain ``lstm_ae`` is as good as any family and the
    cheapest; training longer than 30 epochs fitted the training day and transferred worse.
    """

    model_config = FROZEN

    model: str = "lstm_ae"
    epochs: int = Field(default=30, ge=1)
    window: int = Field(default=16, ge=1)  # 1: single flows (pca, isolation_forest only)
    stride: int = Field(default=4, ge=1)  # training windows; scoring windows do not overlap (stride T)
    hidden: int = Field(default=32, ge=1)
    batch_size: int = Field(default=512, ge=1)
    lr: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    grad_clip: float = Field(default=1.0, gt=0)
    patience: int = Field(default=4, ge=1)
    scaler: Literal["standard", "robust"] = "standard"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = Field(default=42, ge=0)
    max_train_windows: int | None = Field(default=None, ge=1)
    model_kwargs: dict[str, Any] = Field(default_factory=dict)


class SplitConfig(BaseModel):
    """Fractions of the training files' benign flows; training gets what is left."""

    model_config = FROZEN

    validation: float = Field(default=0.1, gt=0, lt=1)
    calibration: float = Field(default=0.1, gt=0, lt=1)
    test: float = Field(default=0.2, ge=0, lt=1)

    @model_validator(mode="after")
    def _leaves_training(self) -> SplitConfig:
        if self.validation + self.calibration + self.test >= 0.9:
            raise ValueError("validation + calibration + test must leave at least 10% for training")
        return self

    @property
    def train(self) -> float:
        return 1.0 - self.validation - self.calibration - self.test


class FlowRule(BaseModel):
    """How flows get scores from windows; ``stride`` None means the window length."""

    model_config = FROZEN

    stride: int | None = Field(default=None, ge=1)
    aggregate: str = Field(default="mean", pattern="^(mean|max)$")
    #: "global": windows of a file's consecutive flows; "host": of one source host's consecutive
    #: flows in timestamp order (``host_windows``; global order where a log has no identifiers)
    windows: str = Field(default="global", pattern="^(global|host)$")

    def stride_for(self, window: int) -> int:
        return min(self.stride or window, window)


class EntityRule(BaseModel):
    """How entities are ranked; stored with the model so that calibration and nights agree."""

    model_config = FROZEN

    min_flows: int = Field(default=10, ge=1)
    prior_flows: float = Field(default=10.0, ge=0)
    block_flows: int = Field(default=20, ge=2)  # pseudo-host size when calibration flows carry no host
    block_step: int = Field(default=5, ge=1)


class DetectorConfig(BaseModel):
    """How a trained network becomes a detector: per-flow rule and calibration.

    The defaults are the recommended rule (``benchmarks/quality.py``, docs/BENCHMARKS.md). Why
    these: on other days' traffic every family scored below a single-flow PCA until each flow's
    score became the Mahalanobis distance of its reconstruction errors *and its own scaled
    features* (fitted on benign validation flows). A threshold set on one day gave about twice its
    false-positive rate on other days, so the target is 0.5% to keep other days within 2%.
    """

    model_config = FROZEN

    rule: FlowRule = FlowRule()
    calibration: Literal["quantile", "mahalanobis", "pot"] = "mahalanobis"
    mahalanobis_inputs: bool = True  # the error model also sees each flow's own scaled features
    target_fpr: float = Field(default=0.005, gt=0, lt=0.5)
    pot_initial_quantile: float = Field(default=0.98, gt=0.5, lt=1)
    max_calibration_flows: int = Field(default=500_000, ge=100)
    entity: EntityRule = EntityRule()  # how flows aggregate into entities (hosts, pairs)


class TrainJob(BaseModel):
    """One training job: which curated files, which model, which split, which detector rule."""

    model_config = FROZEN

    data: Path
    files: tuple[str, ...] = ()
    days: tuple[str, ...] = ()
    train: TrainConfig = TrainConfig()
    split: SplitConfig = SplitConfig()
    detector: DetectorConfig = DetectorConfig()
    register_model: bool = True
    resume: bool = False


def train_job(*layers: Mapping[str, Any] | TrainJob | None, **fields: Any) -> TrainJob:
    """The one ``TrainJob`` builder (CLI, schedule, demo, benchmarks): the class defaults, then each
    layer in order (settings, a YAML job file, CLI options), then ``fields``.

    Layers are nested like the job (``{"train": {"epochs": 3}, "detector": {"rule": {...}}}``) and
    merge field by field; a None value is an option not given and overrides nothing; a model (a
    whole ``TrainJob``, a ``FlowRule``) sets every one of its fields. The model name is
    checked where the models are (``learn.training.check_model``).
    """
    merged: dict[str, Any] = {}
    for layer in (*layers, fields):
        merged = _merge(merged, layer.model_dump() if isinstance(layer, BaseModel) else layer or {})
    return TrainJob.model_validate(merged)


def _merge(base: Mapping[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in layer.items():
        if isinstance(value, BaseModel):
            value = value.model_dump()
        if value is None:
            continue
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            value = _merge(out[key], value)
        elif isinstance(value, Mapping):
            value = _merge({}, value)
        out[key] = value
    return out


class JobFileError(ValueError):
    """A YAML job file that is not a valid job: its message is one line naming the file and field."""


def read_job_file(path: Path) -> dict[str, Any]:
    """A YAML ``TrainJob`` (every field optional but ``data`` may come from the command line),
    checked against the same frozen model, so a misspelt key fails here naming the file and key."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise JobFileError(f"{path}: {' '.join(str(exc).split())}") from None
    if not isinstance(raw, dict):
        raise JobFileError(f"{path}: a job file is a mapping of TrainJob fields, not {type(raw).__name__}")
    try:
        TrainJob.model_validate(raw)
    except ValidationError as exc:
        errors = [e for e in exc.errors() if not (e["type"] == "missing" and e["loc"] == ("data",))]
        if errors:
            raise JobFileError(f"{path}: " + "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)) from None
    return raw


class RetrainJob(BaseModel):
    """Raw inputs, the ingest folder they go to, and the training job run on it."""

    model_config = FROZEN

    inputs: tuple[str, ...]
    train: TrainJob
    promote: bool = True


class CompareJob(BaseModel):
    """Every model of ``models`` trained and evaluated on the same inputs, split and budget."""

    model_config = FROZEN

    inputs: tuple[str, ...]
    train: TrainJob
    models: str = "all"


class ScoreItem(BaseModel):
    """One input with its output fixed beforehand (score-nightly: the ledger's row and path)."""

    model_config = FROZEN

    path: str
    member: str | None = None
    target: Path  # OUT/<stem>.scored.parquet
    key: int | None = None  # the ledger row


class ScoreJob(BaseModel):
    """Batch scoring of traffic logs with one model version."""

    model_config = FROZEN

    inputs: tuple[str, ...]
    out: Path
    model_uri: str = "models:/flowae@champion"
    device: str = "auto"
    batch_rows: int | None = None
    progress: bool = False
    ledger: Path | None = None  # the inbox ledger to record each scored file in (score-nightly)
    owner: str | None = None  # whose claims on the ledger's rows these are (score-nightly)
    items: tuple[ScoreItem, ...] = ()  # inputs with their outputs fixed (instead of ``inputs``)
    runner: Literal["local", "dask"] = "local"
    address: str | None = None  # the Dask scheduler, tcp://HOST:PORT (runner dask)
    part_rows: int = 2_000_000  # parquet files with more rows are scored in parts of about this many
