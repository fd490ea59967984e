"""`mahalanobis_flow`: a Ledoit-Wolf Mahalanobis distance of each flow's own scaled features, no
network, fitted on benign flows only; each flow scored alone whatever the window length."""
from __future__ import annotations

import json

import numpy as np
import pytest

from components.learn.models import BASELINE_NAMES, BASELINES, build_model, score_array


def _benign(n: int = 4000, seed: int = 0) -> np.ndarray:
    """Two correlated features (rho 0.8, unit variance) and a third independent one."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = 0.8 * a + 0.6 * rng.normal(size=n)
    return np.c_[a, b, rng.normal(size=n)].astype(np.float32)


def test_registered_as_a_baseline():
    assert "mahalanobis_flow" in BASELINE_NAMES and "mahalanobis_flow" in BASELINES
    model = build_model("mahalanobis_flow", n_features=3, window=1, seed=7)
    assert model.trainable is False and model.hparams["window"] == 1 and model.hparams["seed"] == 7


def test_fits_on_benign_flows_and_scores_a_shifted_flow_higher():
    benign = _benign()
    model = build_model("mahalanobis_flow", n_features=3, window=1).fit(benign[:, None, :])
    # the location is the benign mean, the precision the inverse of the (barely shrunk) covariance
    np.testing.assert_allclose(model.location_, benign.mean(axis=0), atol=1e-6)
    assert 0 <= model.shrinkage_ < 0.01
    d2 = model.distances(benign)
    assert np.mean(d2) == pytest.approx(3.0, rel=0.05)  # chi-square with 3 degrees of freedom
    centre = model.distances(model.location_[None])[0]
    # 3 standard deviations along the third (independent) feature: d^2 = 9
    along = model.distances((model.location_ + [0, 0, 3])[None])[0]
    # the same Euclidean step against the correlation (a up, b down) is far less likely
    against = model.distances((model.location_ + [3 / np.sqrt(2), -3 / np.sqrt(2), 0])[None])[0]
    assert centre == pytest.approx(0.0, abs=1e-9)
    assert along == pytest.approx(9.0, rel=0.08)
    # 1 / (1 - rho) = 5 times the independent direction's distance: 45
    assert against == pytest.approx(45.0, rel=0.1)
    assert against > np.quantile(d2, 0.999) > along / 2


def test_each_flow_is_scored_alone_at_any_window_length():
    benign = _benign()
    model = build_model("mahalanobis_flow", n_features=3, window=1).fit(benign[:, None, :])
    flows = _benign(64, seed=1)
    single = score_array(model, flows[:, None, :])
    windows = score_array(model, flows.reshape(8, 8, 3))
    np.testing.assert_allclose(windows.flow_scores.reshape(-1), single.flow_scores[:, 0], rtol=1e-6)
    np.testing.assert_allclose(single.flow_scores[:, 0], model.distances(flows), rtol=1e-6)
    np.testing.assert_allclose(windows.window_scores, single.flow_scores[:, 0].reshape(8, 8).mean(1), rtol=1e-5)
    # per-feature errors: each feature's squared deviation from the benign location
    np.testing.assert_allclose(single.flow_errors[:, 0], (flows - model.location_) ** 2, rtol=1e-5)


def test_windows_of_several_flows_fit_the_same_flows():
    benign = _benign(4096)
    one = build_model("mahalanobis_flow", n_features=3, window=1).fit(benign[:, None, :])
    eight = build_model("mahalanobis_flow", n_features=3, window=8).fit(benign.reshape(-1, 8, 3))
    np.testing.assert_allclose(eight.precision_, one.precision_, rtol=1e-9)


def test_fit_uses_at_most_max_fit_flows_evenly_spaced():
    benign = _benign(1000)
    model = build_model("mahalanobis_flow", 3, 1, max_fit_flows=100).fit(benign[:, None, :])
    spaced = benign[np.linspace(0, 999, 100).astype(np.int64)]
    np.testing.assert_allclose(model.location_, spaced.mean(axis=0), atol=1e-6)


def test_state_round_trips_through_json_with_identical_scores():
    model = build_model("mahalanobis_flow", 3, 1).fit(_benign()[:, None, :])
    state = json.loads(json.dumps(model.to_dict()))
    assert set(state) == {"name", "hparams", "location", "precision", "shrinkage"}
    again = BASELINES["mahalanobis_flow"].from_dict(state)
    flows = _benign(50, seed=2)[:, None, :]
    np.testing.assert_array_equal(score_array(again, flows).flow_scores, score_array(model, flows).flow_scores)
    bad = {**state, "precision": state["precision"][:2]}
    with pytest.raises(ValueError, match="precision"):
        BASELINES["mahalanobis_flow"].from_dict(bad)


def test_scoring_before_fit_is_an_error():
    with pytest.raises(RuntimeError, match="before fit"):
        build_model("mahalanobis_flow", 3, 1).score_windows(np.zeros((1, 1, 3), np.float32))
