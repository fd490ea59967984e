"""What one stage hands the next: windows -> train -> calibrate -> evaluate -> register (``flowae
train`` and ``retrain``), one model's sibling run (``compare``), one model measured (``evaluate``).

Small frozen models of paths and key figures, never the data: the prepared flows and the detector
folders stay on disk, so nothing big travels through Prefect. A misspelt field fails where it is
written (``extra="forbid"``), not as a ``KeyError`` in the stage after.

Why a module of its own: these are the contract between the flows' tasks, read by
``flows/stages.py``, ``flows/train.py``, ``flows/retrain.py``, ``flows/compare.py`` and
``flows/evaluate.py``; they hold no Prefect and no MLflow, so they live in ``components`` beside
``components/jobs.py``, but apart from it: a job is what a user asks for (a YAML file can hold
one), a stage result is what a run made of it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from components.detect.detector import ModelRecord

FROZEN = ConfigDict(frozen=True, extra="forbid")


class Validated(BaseModel):
    """The gate before training passed: how many inputs and curated rows."""

    model_config = FROZEN

    files: int
    rows: int


class Prepared(BaseModel):
    """The split, scaled flows and their windows, saved for the next stages (``folder``)."""

    model_config = FROZEN

    folder: Path
    info: ModelRecord  # what the model records of its data (files, digests, split): Detector.info
    digest: str  # of the training files' contents: same job, same data -> same checkpoint
    flows: int
    split: dict[str, dict[str, int]]  # role -> {"flows": n, "benign": n}
    train_windows: int
    val_windows: int


class Trained(BaseModel):
    """A trained, not yet calibrated detector (``folder``) and the run that trained it."""

    model_config = FROZEN

    folder: Path
    device: str
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    stopped_early: bool
    run_id: str


class Calibrated(BaseModel):
    """The detector with its threshold (``folder``): what is evaluated and registered."""

    model_config = FROZEN

    folder: Path
    threshold: float
    method: str
    fallback: str | None = None
    calibration_flows: int


class Evaluated(BaseModel):
    """The test flows' key figures and the markdown summary table."""

    model_config = FROZEN

    auroc: float
    auprc: float
    f1: float
    fpr: float
    summary_md: str


class Registered(BaseModel):
    """The logged model and, when registered, its version (None: ``--no-register``)."""

    model_config = FROZEN

    version: str | None
    model_uri: str
    challenger: bool = False


class ModelRun(BaseModel):
    """One model of ``compare``: its leaderboard row, its test scores file, its run."""

    model_config = FROZEN

    row: dict[str, Any]
    scores: Path  # .npz: scores, attack (for the all-models ROC)
    other_day_files: tuple[str, ...]
    run_id: str
    link: str


class ModelEvaluation(BaseModel):
    """``flowae evaluate``: the run, its summary table and metrics, what was left out."""

    model_config = FROZEN

    run_id: str
    summary: str
    metrics: dict[str, Any]
    left_out: tuple[str, ...]
    includes_training_data: bool
    link: str
