"""Recall at 1% false positives on another day's benign flows: the pure metric, which files count
as another day's, and the leaderboard column ``compare`` fills from them."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from components.data.capture_order import GIVEN, NAME, TIMESTAMP, FileOrder
from components.detect.compare import capture_day, other_day_files, recall_at_other_day_fpr
from components.detect.evaluation import recall_at_fpr
from components.detect.holdout import EvalSet


def test_recall_above_the_99th_percentile_of_benign():
    benign = np.arange(100.0)  # 99th percentile (linear): 98 + 0.01 * 1 = 98.01
    attacks = np.array([97.0, 98.0, 98.01, 98.5, 99.0, 500.0, -1.0, 50.0])
    assert recall_at_fpr(attacks, benign) == 3 / 8  # 98.5, 99, 500: strictly above
    # and exactly 1% of these benign flows are above it
    assert np.mean(benign > np.quantile(benign, 0.99)) == 0.01


def test_recall_at_other_budgets_and_order_free():
    rng = np.random.default_rng(0)
    benign = rng.permutation(np.arange(1000.0))  # 95th percentile: 949.05
    attacks = np.r_[np.full(30, 949.0), np.full(70, 949.1)]
    assert recall_at_fpr(attacks, benign, fpr=0.05) == 0.7
    assert recall_at_fpr(attacks, benign, fpr=0.01) == 0.0  # 99th percentile: 989.01


def test_ties_at_the_threshold_are_not_flagged():
    benign = np.zeros(500)
    assert recall_at_fpr(np.array([0.0, 0.0, 1e-9]), benign) == pytest.approx(1 / 3)


def test_empty_sets_give_nan_and_a_bad_budget_is_an_error():
    assert math.isnan(recall_at_fpr(np.array([]), np.arange(10.0)))
    assert math.isnan(recall_at_fpr(np.arange(3.0), np.array([])))
    with pytest.raises(ValueError, match="fpr"):
        recall_at_fpr(np.arange(3.0), np.arange(3.0), fpr=1.0)


def _paths(*names: str) -> list[Path]:
    return [Path("/x/curated") / n for n in names]


def test_other_day_files_by_the_day_in_their_names():
    files = _paths("Monday-WorkingHours.parquet", "Tuesday-WorkingHours.parquet",
                   "Monday-extra.parquet", "Friday-DDos.parquet")
    order = FileOrder([f.name for f in files], NAME, guessed=False)
    assert other_day_files(files, files[:1], order) == ["Tuesday-WorkingHours.parquet", "Friday-DDos.parquet"]
    assert other_day_files(files, files, order) == []  # every file trained: no other day


def test_a_file_without_a_known_day_counts_as_another_days():
    files = _paths("friday-afternoon-benign-head.MachineLearningCVE.parquet", "friday-ddos-1000.parquet",
                   "week-benign-sample.parquet")
    order = FileOrder([f.name for f in files], GIVEN, guessed=True)
    assert capture_day(files[2].name, order) is None
    assert other_day_files(files, files[:1], order) == ["week-benign-sample.parquet"]


def test_timestamp_order_compares_dates():
    files = _paths("a.parquet", "b.parquet", "c.parquet")
    keys = {"a.csv": "2017-07-03T08:55:00", "b.csv": "2017-07-03T13:00:00", "c.csv": "2017-07-04T09:00:00"}
    order = FileOrder([f.name for f in files], TIMESTAMP, guessed=False, keys=keys)
    assert capture_day("c.parquet", order) == "2017-07-04"
    assert other_day_files(files, files[:1], order) == ["c.parquet"]


def test_recall_per_label_against_other_day_benign_only():
    # same-day benign scores high (they must not set the threshold), other-day benign 0..99
    labels = np.array(["BENIGN"] * 100 + ["BENIGN"] * 10 + ["DDoS"] * 4 + ["PortScan"] * 2, dtype=object)
    files = np.array(["week.parquet"] * 100 + ["friday.parquet"] * 10 + ["ddos.parquet"] * 4
                     + ["scan.parquet"] * 2, dtype=object)
    scores = np.r_[np.arange(100.0), np.full(10, 1e6), [99.0, 99.5, 10.0, 98.0], [200.0, 1.0]]
    scored = EvalSet(np.arange(len(scores)), scores, labels, files, np.zeros((len(scores), 3), np.int16),
                     np.zeros(0), np.zeros(0, dtype=object))
    out = recall_at_other_day_fpr(scored, ["week.parquet"])
    assert out == {"": 3 / 6, "DDoS": 2 / 4, "PortScan": 1 / 2}
    assert recall_at_other_day_fpr(scored, ["nothing.parquet"]) == {}
