"""Thresholds from benign calibration scores: target FPR held on fresh benign, POT on known tails."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import genpareto

from components.detect.calibration import calibrate, mahalanobis, oracle_threshold, pot


@pytest.mark.parametrize("target", [0.01, 0.05])
def test_quantile_reaches_its_target_fpr_on_held_out_benign(target):
    rng = np.random.default_rng(0)
    benign = rng.lognormal(0.0, 1.0, 40_000)
    cal = calibrate("quantile", benign[:20_000], target_fpr=target)
    held_out_fpr = float((benign[20_000:] > cal.threshold).mean())
    assert held_out_fpr == pytest.approx(target, abs=0.25 * target)
    assert float((benign[:20_000] > cal.threshold).mean()) <= target  # "higher": never above
    assert (cal.method, cal.n_flows, cal.fallback) == ("quantile", 20_000, None)


@pytest.mark.parametrize("shape", [0.2, 0.0, -0.2])
def test_pot_recovers_the_quantile_of_a_known_generalised_pareto_tail(shape):
    dist = genpareto(c=shape, scale=1.0)
    samples = dist.rvs(size=20_000, random_state=np.random.default_rng(1))
    cal = pot(samples, risk=1e-3, initial_quantile=0.98)
    assert cal.fallback is None
    assert cal.threshold == pytest.approx(dist.ppf(1 - 1e-3), rel=0.08)
    assert cal.details["gamma"] == pytest.approx(shape, abs=0.1)
    assert cal.details["peaks"] == pytest.approx(400, abs=2)


def test_pot_extrapolates_beyond_the_data_where_a_quantile_cannot():
    dist = genpareto(c=0.3, scale=1.0)
    samples = dist.rvs(size=2_000, random_state=np.random.default_rng(2))
    cal = pot(samples, risk=1e-5, initial_quantile=0.95)
    assert cal.fallback is None and cal.threshold > samples.max()
    assert cal.threshold == pytest.approx(dist.ppf(1 - 1e-5), rel=0.5)


def test_pot_falls_back_to_the_quantile_and_says_why():
    few = calibrate("pot", np.arange(300.0), target_fpr=0.01)  # 6 peaks above the 98th percentile
    assert few.method == "pot" and "only 6 peaks" in few.fallback
    assert few.threshold == pytest.approx(np.quantile(np.arange(300.0), 0.99, method="higher"))
    ties = calibrate("pot", np.r_[np.zeros(9_000), np.ones(1_000)], target_fpr=0.01)  # none above the 98th
    assert (ties.fallback, ties.threshold) == ("only 0 peaks above the initial threshold (need 20)", 1.0)
    flat = calibrate("pot", np.r_[np.zeros(9_850), np.full(150, 2.0)], target_fpr=0.01)  # 150 equal peaks
    assert (flat.fallback, flat.threshold) == ("peaks are all equal: no tail to fit", 2.0)
    wrong = pot(np.random.default_rng(3).random(5_000), risk=0.05, initial_quantile=0.98)
    assert "not in the tail" in wrong.fallback


def test_mahalanobis_uses_the_error_covariance_and_keeps_the_target():
    rng = np.random.default_rng(4)
    cov = np.array([[1.0, 0.9], [0.9, 1.0]])
    abs_errors = np.abs(rng.multivariate_normal([2.0, 2.0], cov, size=20_000))
    squared = abs_errors ** 2
    cal = calibrate("mahalanobis", squared.mean(axis=1), 0.01, feature_errors=squared[:10_000])
    score = cal.flow_score_fn()
    held = score(squared[10_000:], None)
    assert float((held > cal.threshold).mean()) == pytest.approx(0.01, abs=0.004)
    # along the correlation an error is ordinary, across it the same size is anomalous
    along, across = np.array([[3.0, 3.0]]) ** 2, np.array([[3.0, 1.0]]) ** 2
    assert score(across, None)[0] > score(along, None)[0]
    mean, precision = np.asarray(cal.error_mean), np.asarray(cal.error_precision)
    assert mahalanobis(np.array([mean ** 2]), mean, precision)[0] == pytest.approx(0.0, abs=1e-9)


def test_unknown_method_and_empty_input_are_clear():
    with pytest.raises(ValueError, match="unknown calibration method 'best'"):
        calibrate("best", np.ones(10), 0.01)
    with pytest.raises(ValueError, match="needs benign calibration flows"):
        calibrate("quantile", np.array([np.nan]), 0.01)
    with pytest.raises(ValueError, match="per-feature errors"):
        calibrate("mahalanobis", np.ones(10), 0.01)


def test_oracle_threshold_is_the_best_f1_cut():
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    threshold, f1 = oracle_threshold(scores, np.array([0, 0, 0, 1, 1], bool))
    assert threshold == pytest.approx(0.8) and f1 == pytest.approx(1.0)
