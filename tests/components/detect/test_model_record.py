"""``Detector.info`` is a typed ``ModelRecord``: detector.json keeps the keys it had, and a record
saved before the schema (a plain dict, without the newer fields) still loads."""
from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from components.detect.detector import Detector, ModelRecord
from components.jobs import FlowRule
from components.learn.features import FeatureTransform
from components.learn.models.baselines import PersistenceBaseline

RECORD = {"train": {"model": "persistence", "window": 2}, "device": "cpu", "best_epoch": 2, "best_val_loss": 0.25,
          "data_dir": "/data/ingested", "files": ["a.parquet", "b.parquet"], "training_files": ["a.parquet"],
          "file_order": {"method": "name"}, "data_digest": "0123456789abcdef",
          "file_digests": {"a.parquet": "aa", "b.parquet": "bb"},
          "split": {"train": 0.6, "validation": 0.1, "calibration": 0.1, "test": 0.2},
          "split_counts": {"train": {"flows": 60, "benign": 60}}}


def detector(info) -> Detector:
    transform = FeatureTransform(feature_names=["f1", "f2"], center=np.zeros(2), scale=np.ones(2))
    return Detector(name="persistence", model=PersistenceBaseline(), transform=transform, window=2,
                    rule=FlowRule(), calibration=None, contract_version="1", info=info)


def test_save_and_load_keep_the_record_typed_and_its_json_keys(tmp_path):
    folder = detector(ModelRecord(**RECORD)).save(tmp_path / "d")
    assert json.loads((folder / "detector.json").read_text())["info"] == RECORD
    info = Detector.load(folder).info
    assert isinstance(info, ModelRecord) and info.as_json() == RECORD
    assert (info.best_epoch, info.training_files, info.file_digests["b.parquet"]) == (2, ["a.parquet"], "bb")


def test_an_old_record_without_the_newer_fields_loads_and_saves_the_same_keys(tmp_path):
    old = {k: v for k, v in RECORD.items() if k not in ("file_digests", "split_counts")} | {"legacy": 1}
    folder = detector(ModelRecord(**RECORD)).save(tmp_path / "d")
    spec = json.loads((folder / "detector.json").read_text())
    (folder / "detector.json").write_text(json.dumps({**spec, "info": old}))
    info = Detector.load(folder).info
    assert info.file_digests == {} and "file_digests" not in info.as_json()
    assert info.files == ["a.parquet", "b.parquet"] and info.as_json() == old
    again = Detector.load(detector(info).save(tmp_path / "again"))
    assert json.loads((tmp_path / "again" / "detector.json").read_text())["info"] == old
    assert again.info.data_digest == "0123456789abcdef"


def test_a_plain_dict_is_validated_into_the_record():
    assert detector(dict(RECORD)).info.split_counts == {"train": {"flows": 60, "benign": 60}}
    with pytest.raises(ValidationError, match="best_epoch"):
        detector({"best_epoch": "the second"})
