"""Jobs are built once: one set of defaults (the recommended detector), a YAML job file checked by
the same frozen models, command-line flags over the file, no job config that accepts a stray key."""
from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError
from typer.testing import CliRunner

from components import jobs
from components.jobs import (
    DetectorConfig,
    JobFileError,
    TrainConfig,
    TrainJob,
    read_job_file,
    train_job,
)
from components.learn.training import check_model
from components.settings import Settings
from flows.cli import app
from flows.cli_options import build_job


def test_the_class_defaults_are_the_recommended_detector():
    train = TrainConfig()
    assert (train.model, train.epochs, train.patience, train.window, train.stride, train.hidden,
            train.batch_size, train.lr, train.scaler) == ("lstm_ae", 30, 4, 16, 4, 32, 512, 3e-3, "standard")
    detector = DetectorConfig()
    assert (detector.calibration, detector.mahalanobis_inputs, detector.target_fpr) == ("mahalanobis", True, 0.005)
    assert train_job(data=Path("d")) == TrainJob(data=Path("d"))


def test_every_job_config_is_frozen_and_forbids_stray_fields():
    configs = [c for _, c in inspect.getmembers(jobs, inspect.isclass)
               if issubclass(c, BaseModel) and c is not BaseModel]
    assert {"DetectorConfig", "TrainJob", "RetrainJob", "CompareJob", "ScoreJob"} <= {c.__name__ for c in configs}
    for config in configs:
        assert config.model_config.get("extra") == "forbid", config.__name__
        assert config.model_config.get("frozen") is True, config.__name__


def test_a_misspelt_key_in_a_job_file_fails_naming_the_file_and_the_key(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("data: /x\ntrain:\n  epohcs: 3\n")
    with pytest.raises(JobFileError, match=r"job\.yaml: train\.epohcs: Extra inputs are not permitted"):
        read_job_file(path)
    result = CliRunner().invoke(app, ["train", "--job", str(path)])
    assert result.exit_code == 2
    assert "job.yaml: train.epohcs" in result.output
    assert result.output.strip().count("\n") == 0


def test_a_job_file_without_data_takes_it_from_the_command_line(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("train: {epochs: 5}\n")
    assert read_job_file(path) == {"train": {"epochs": 5}}
    result = CliRunner().invoke(app, ["train", "--job", str(path)])
    assert result.exit_code == 2 and "--data is needed" in result.output


def test_flags_given_override_the_job_file_which_overrides_the_settings(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("data: from-file\ndays: [monday]\ntrain: {epochs: 5, window: 8, device: cpu}\n"
                    "detector: {target_fpr: 0.02, rule: {aggregate: max}}\n")
    settings = Settings(device="cuda", seed=7)
    job = build_job(settings, Path("from-flag"), job_file=path, epochs=2, score_stride=3)
    assert job.data == Path("from-flag") and job.days == ("monday",)
    assert (job.train.epochs, job.train.window, job.train.device, job.train.seed) == (2, 8, "cpu", 7)
    assert (job.train.lr, job.detector.calibration) == (3e-3, "mahalanobis")  # the defaults under both
    assert (job.detector.target_fpr, job.detector.rule.aggregate, job.detector.rule.stride) == (0.02, "max", 3)
    no_file = build_job(settings, Path("d"))
    assert (no_file.train.device, no_file.train.seed, no_file.train.epochs) == ("cuda", 7, 30)


def test_the_builder_merges_layers_field_by_field_and_checks_the_model():
    base = train_job(data=Path("d"), train={"epochs": 3, "hidden": 8})
    job = train_job(base, {"train": {"epochs": None, "window": 4}}, detector={"rule": {"stride": 2}})
    assert (job.train.epochs, job.train.hidden, job.train.window, job.detector.rule.stride) == (3, 8, 4, 2)
    with pytest.raises(ValueError, match="unknown model 'gru'"):
        check_model(train_job(data=Path("d"), train={"model": "gru"}).train)
    with pytest.raises(ValidationError, match="lr"):
        train_job(data=Path("d"), train={"lr": 0})
