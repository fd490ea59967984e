"""Every job flowae runs, as one frozen, typed object built once (from CLI options or a YAML file)
and passed whole from the CLI through the flows into ``components``.

Why here, beside ``settings``: the CLI, the flows, the benchmarks and the tests build the same
objects, so a job's defaults are written once, and a misspelt field fails where it is written
(``extra="forbid"``), not three stages later.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from components.detect.entities import EntityRule
from components.detect.flow_scores import FlowRule
from components.learn.split import SplitConfig
from components.learn.training import TrainConfig

FROZEN = ConfigDict(frozen=True, extra="forbid")


class DetectorConfig(BaseModel):
    """How a trained network becomes a detector: per-flow rule and calibration."""

    model_config = FROZEN

    rule: FlowRule = FlowRule()
    calibration: Literal["quantile", "mahalanobis", "pot"] = "quantile"
    mahalanobis_inputs: bool = False  # the error model also sees each flow's own scaled features
    target_fpr: float = Field(default=0.01, gt=0, lt=0.5)
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
