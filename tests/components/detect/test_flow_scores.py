"""Every flow gets one finite score from its covering windows, streamed or whole, short files too."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from components.detect.flow_scores import FlowScorer, ScoredFlows, _top_by_partition, top_features
from components.jobs import FlowRule
from components.learn.models import build_model

T, F = 8, 5


@pytest.fixture(scope="module")
def lstm():
    torch.manual_seed(0)
    return build_model("lstm_ae", F, T, hidden=6).eval()


@pytest.fixture(scope="module")
def pca():
    rng = np.random.default_rng(0)
    normal = rng.normal(0, 1, (400, T, F)).astype(np.float32) * 0.1
    return build_model("pca", F, T, n_components=4).fit(normal)


def flows(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.1, (n, F)).astype(np.float32)


@pytest.mark.parametrize("n", [1, 5, T - 1, T, T + 1, 2 * T + 3, 101])
@pytest.mark.parametrize("rule", [FlowRule(), FlowRule(stride=1), FlowRule(stride=3, aggregate="max")])
def test_every_flow_gets_a_finite_score(n, rule, lstm):
    out = FlowScorer(lstm, T, rule).score_all(flows(n))
    assert len(out.scores) == n and np.isfinite(out.scores).all()
    assert out.top_features.shape == (n, 3)
    assert len(out.window_scores) == len(out.window_starts) >= 1
    if n < T:  # one padded window; its copies of the first flow are not reported
        assert out.window_starts.tolist() == [n - T]
    else:  # the last window ends at the last flow
        assert out.window_starts.max() == n - T


@pytest.mark.parametrize("chunks", [[1] * 20, [3, 7, 2, 30, 1, 60], [101], [50, 51]])
def test_streaming_in_any_pieces_equals_the_whole_file(chunks, lstm):
    x = flows(sum(chunks))
    for rule in (FlowRule(), FlowRule(stride=2)):
        whole = FlowScorer(lstm, T, rule).score_all(x)
        scorer = FlowScorer(lstm, T, rule)
        parts, lo = [], 0
        for size in chunks:
            parts.append(scorer.feed(x[lo:lo + size]))
            lo += size
        parts.append(scorer.finish())
        assert [p.first for p in parts if len(p)] == np.cumsum([0] + [len(p) for p in parts if len(p)])[:-1].tolist()
        streamed = ScoredFlows.concat(parts)
        np.testing.assert_allclose(streamed.scores, whole.scores, rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(streamed.window_starts, whole.window_starts)


def test_an_odd_flow_among_normal_neighbours_scores_highest(pca):
    x = flows(64, seed=2)
    x[37] += 3.0  # one flow unlike the rest
    own = FlowScorer(pca, T, FlowRule(stride=1)).score_all(x)
    assert int(np.argmax(own.scores)) == 37
    others = np.delete(own.scores, 37)
    assert own.scores[37] > 5 * np.median(others)


def test_max_aggregate_is_at_least_the_mean(lstm):
    x = flows(40)
    mean = FlowScorer(lstm, T, FlowRule(stride=1)).score_all(x).scores
    top = FlowScorer(lstm, T, FlowRule(stride=1, aggregate="max")).score_all(x).scores
    assert (top >= mean - 1e-9).all() and (top > mean + 1e-9).any()


def test_top_features_name_the_feature_that_is_off(pca):
    x = flows(32, seed=3)
    x[10, 2] += 4.0
    out = FlowScorer(pca, T, FlowRule()).score_all(x)
    assert out.top_features[10, 0] == 2


def test_isolation_forest_explains_by_deviation_from_the_benign_centre():
    rng = np.random.default_rng(4)
    forest = build_model("isolation_forest", F, 1).fit(rng.normal(0, 1, (300, 1, F)).astype(np.float32))
    x = flows(10)
    x[4, 3] = 5.0
    out = FlowScorer(forest, 1, FlowRule()).score_all(x)
    assert out.top_features[4, 0] == 3 and int(np.argmax(out.scores)) == 4


def test_top_features_helper_orders_largest_first():
    values = np.array([[0.1, 0.9, 0.5, 0.3], [4.0, 1.0, 2.0, 3.0]])
    assert top_features(values).tolist() == [[1, 2, 3], [0, 3, 2]]


@pytest.mark.parametrize("features", [1, 2, 3, 4, 7, 59])
def test_top_features_are_those_of_the_partition_rule_ties_nan_and_inf_included(features):
    rng = np.random.default_rng(features)
    for trial in range(40):
        values = rng.normal(size=(int(rng.integers(1, 60)), features)).astype(np.float32 if trial % 2 else np.float64)
        if trial % 3 == 0:
            values = np.round(values)  # many ties
        if trial % 4 == 0:
            rows, cols = rng.integers(0, len(values), 4), rng.integers(0, features, 4)
            values[rows, cols] = rng.choice([np.nan, np.inf, -np.inf], 4)
        k = min(3, features)
        assert top_features(values).tolist() == _top_by_partition(values, k).tolist()

