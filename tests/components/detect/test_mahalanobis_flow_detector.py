"""`mahalanobis_flow` through the detector machinery on real rows: fitted on the benign training
flows, calibrated, saved as JSON (no pickle) and loaded with identical scores, and on compare's
leaderboard with recall at 1% false positives on the other days' benign sample."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from components.detect.compare import RECALL_AT_FPR, run_model
from components.detect.detector import Detector
from components.detect.fit import fit_detector
from components.detect.holdout import score_test
from components.learn.dataset import TRAIN


@pytest.fixture(scope="module")
def maha_fit(real_ingested, make_job):
    return fit_detector(make_job(real_ingested, model="mahalanobis_flow"), progress=False)


def test_fitted_on_benign_training_flows_only(maha_fit):
    data = maha_fit.data
    train = np.flatnonzero((data.split.roles == TRAIN) & data.flows.is_benign)
    model = maha_fit.detector.model
    # the training windows tile the benign training flows: the location is (about) their mean
    np.testing.assert_allclose(model.location_, data.x[train].mean(axis=0), atol=0.05)
    # a quantile threshold: the target share of the benign calibration flows lies above it
    cal = maha_fit.detector.calibration
    assert (cal.method, cal.n_flows) == ("quantile", len(maha_fit.calibration_scores))
    assert cal.threshold == np.quantile(maha_fit.calibration_scores, 1 - cal.target_fpr, method="higher")


def test_every_flow_gets_its_own_distance_whatever_the_window(maha_fit):
    detector = maha_fit.detector
    x = maha_fit.data.x[:1000]
    scored = detector.scorer().score_all(x)
    np.testing.assert_allclose(scored.scores, detector.model.distances(x), rtol=1e-5)


def test_save_load_json_no_pickle_identical_scores(maha_fit, tmp_path):
    folder = maha_fit.detector.save(tmp_path / "det")
    assert sorted(p.name for p in folder.iterdir()) == ["baseline.json", "detector.json", "transform.json"]
    state = json.loads((folder / "baseline.json").read_text())
    assert state["name"] == "mahalanobis_flow" and len(state["precision"]) == len(maha_fit.detector.feature_names)
    again = Detector.load(folder)
    before = score_test(maha_fit.detector, maha_fit.data)
    after = score_test(again, maha_fit.data)
    np.testing.assert_array_equal(after.scores, before.scores)
    assert again.threshold == maha_fit.detector.threshold


def test_compare_row_has_recall_at_one_percent_other_day_fpr(real_ingested, make_job, names):
    result = run_model("mahalanobis_flow", make_job(real_ingested))
    assert result.other_day_files == [Path(names["week"]).with_suffix(".parquet").name]
    row = result.row()
    assert list(row)[:3] == ["model", "auroc", RECALL_AT_FPR]
    for label in ("DDoS", "PortScan"):  # a share of the family's 1,000 flows (NaN when undefined)
        flagged = row[f"{RECALL_AT_FPR} {label}"] * 1000
        assert flagged == pytest.approx(round(flagged)), label
    # the overall figure is the flow-weighted mean of the two families (1,000 flows each)
    ddos, scan = row[f"{RECALL_AT_FPR} DDoS"], row[f"{RECALL_AT_FPR} PortScan"]
    assert row[RECALL_AT_FPR] == pytest.approx((ddos + scan) / 2, abs=1e-3)
