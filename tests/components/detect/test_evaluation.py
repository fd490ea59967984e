"""Metrics agree with scikit-learn on hand-made cases; windows are labelled by their attack flows."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from components.detect.evaluation import evaluate, window_labels
from components.report.tables import summary_table


def test_flow_metrics_at_the_calibrated_threshold():
    scores = np.array([0.1, 0.2, 0.3, 0.9, 0.4, 0.95, 0.8, 0.05])
    labels = np.array(["BENIGN", "BENIGN", "BENIGN", "BENIGN", "DDoS", "DDoS", "PortScan", "PortScan"], object)
    e = evaluate(scores, labels, threshold=0.5)
    attack = labels != "BENIGN"
    assert e.auroc == pytest.approx(roc_auc_score(attack, scores))
    assert e.auprc == pytest.approx(average_precision_score(attack, scores))
    assert e.confusion == {"tn": 3, "fp": 1, "fn": 2, "tp": 2}
    assert (e.precision, e.recall, e.fpr) == pytest.approx((2 / 3, 0.5, 0.25))
    assert e.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert e.recall_per_label == {"DDoS": 0.5, "PortScan": 0.5}
    assert e.flows_per_label == {"DDoS": 2, "PortScan": 2}
    assert e.auroc_per_label["DDoS"] == pytest.approx(roc_auc_score([0, 0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.9, 0.4, 0.95]))
    assert e.oracle_f1 >= e.f1
    text = summary_table(e)
    assert "| DDoS | 2 | 0.5000 |" in text and "TN 3, FP 1, FN 2, TP 2" in text


def test_only_benign_flows_leaves_ranking_metrics_undefined_not_failing():
    e = evaluate(np.array([0.1, 0.7]), np.array(["BENIGN", "BENIGN"], object), threshold=0.5)
    assert np.isnan(e.auroc) and e.fpr == 0.5 and e.recall_per_label == {}
    assert "auroc" not in e.metrics()  # NaN metrics are left out of MLflow


def test_window_labels_from_the_first_attack_flow_and_padding():
    labels = np.array(["BENIGN", "BENIGN", "DDoS", "BENIGN", "Bot", "BENIGN"], object)
    starts = np.array([-2, 0, 2, 3])  # -2: a padded window over flows 0..1 only
    assert window_labels(labels, starts, 3, len(labels)).tolist() == ["BENIGN", "DDoS", "DDoS", "Bot"]


def test_window_level_metrics_are_reported():
    rng = np.random.default_rng(0)
    w_scores = np.r_[rng.random(50), rng.random(10) + 1]
    w_labels = np.array(["BENIGN"] * 50 + ["DDoS"] * 10, object)
    e = evaluate(np.array([0.1, 0.9]), np.array(["BENIGN", "DDoS"], object), 0.5, w_scores, w_labels)
    assert e.window["auroc"] == 1.0 and e.window["attack_windows"] == 10
