"""The one time split, on the code path users run (curated files -> ``prepare_job``): the transform
saw only benign flows before the cut, validation and calibration start after it, no flow is in two
segments, no window crosses a file or a segment, and fractions are taken over benign flows."""
from __future__ import annotations

import numpy as np
import pytest

from components.data.ingest import IngestConfig, ingest_paths
from components.detect.fit import prepare_job
from components.jobs import DetectorConfig, SplitConfig, TrainConfig, TrainJob
from components.learn.features import FeatureTransform
from components.learn.split import CALIBRATION, TEST, TRAIN, VALIDATION, segment_runs, split_flows
from components.synth import SynthConfig, write_days

DAYS = ["monday", "friday_ddos"]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    root = tmp_path_factory.mktemp("split")
    cfg = SynthConfig(rows=1200, seed=5, variant="TrafficLabelling", format="csv", attacks=None, days=DAYS)
    files = [str(p) for p in write_days(cfg, root / "raw")]
    assert ingest_paths(files, IngestConfig(out=root / "out", run_gx=False)).ok
    return root / "out"


def job(data, files=(), **split) -> TrainJob:
    return TrainJob(data=data, files=files, split=SplitConfig(**split),
                    train=TrainConfig(model="lstm_ae", epochs=1, window=8, stride=2, device="cpu"),
                    detector=DetectorConfig(calibration="quantile"))


def test_the_three_properties_on_the_users_path(ingested):
    prepared = prepare_job(job(ingested))
    data = prepared.data
    roles, benign = data.split.roles, data.flows.is_benign
    first_validation = data.split.cuts[0]
    # 1. the transform was fitted on the benign flows before the cut, and on nothing else
    logged = np.asarray(prepared.data.x) * data.transform.scale + data.transform.center
    fit_rows = (np.arange(len(roles)) < first_validation) & benign
    assert fit_rows.sum() == ((roles == TRAIN) & benign).sum()
    refit = FeatureTransform.fit_log(logged.astype(np.float32), fit_rows, data.transform.feature_names)
    np.testing.assert_allclose(refit.center, data.transform.center, rtol=1e-4, atol=1e-4)
    # 2. validation starts at or after the cut, calibration after validation, test after that
    for role in (VALIDATION, CALIBRATION):
        assert np.flatnonzero(roles == role).min() >= first_validation
    assert np.flatnonzero(roles == TRAIN).max() < first_validation
    # 3. one role per flow; training and validation windows share no flow
    assert roles.shape == benign.shape and set(np.unique(roles)) <= {TRAIN, VALIDATION, CALIBRATION, TEST}
    flows = data.windows.flow_index()
    assert not set(flows[data.train_idx].ravel()) & set(flows[data.val_idx].ravel())
    assert flows[data.val_idx].min() > flows[data.train_idx].max()


def test_no_window_crosses_a_file_or_a_segment(ingested):
    data = prepare_job(job(ingested)).data
    flows = data.windows.flow_index()
    runs = segment_runs(data.flows.file_index, data.split.roles)
    assert (runs[flows] == runs[flows[:, :1]]).all()
    files = data.flows.file_index[flows]
    assert (files == files[:, :1]).all()
    assert len(np.unique(data.flows.file_index)) == 2  # both files were windowed


def test_files_not_chosen_for_training_are_all_test(ingested):
    prepared = prepare_job(job(ingested, files=("Monday-WorkingHours.pcap_ISCX",)))
    data = prepared.data
    friday = data.flows.file_index == [f.name for f in prepared.files].index(
        "Friday-WorkingHours-Afternoon-DDos.pcap_ISCX.parquet")
    assert (data.split.roles[friday] == TEST).all()
    assert [f.name for f in prepared.training_files] == ["Monday-WorkingHours.pcap_ISCX.parquet"]
    assert prepared.order.files[0].startswith("Monday")  # capture order, not the alphabet


def test_fractions_are_taken_over_benign_flows_so_an_attack_tail_cannot_starve_validation():
    is_benign = np.r_[np.ones(800, bool), np.zeros(1200, bool)]  # an attack-heavy tail
    split = split_flows(is_benign, np.ones(2000, bool), SplitConfig(validation=0.1, calibration=0.1, test=0.2))
    counts = split.counts(is_benign)
    assert counts["validation"]["benign"] == 80 and counts["calibration"]["benign"] == 80
    assert counts["train"]["benign"] == 480 and counts["test"]["flows"] == 160 + 1200


def test_no_benign_flows_and_bad_fractions_are_clear_errors():
    with pytest.raises(ValueError, match="no benign flows in the training files"):
        split_flows(np.zeros(10, bool), np.ones(10, bool), SplitConfig())
    with pytest.raises(ValueError, match="at least 10% for training"):
        SplitConfig(validation=0.4, calibration=0.3, test=0.3)
