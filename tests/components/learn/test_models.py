"""Every family trains, scores with the right shapes and round-trips through a weights-only state_dict."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from components.learn.models import (
    BASELINE_NAMES,
    MODEL_NAMES,
    build_model,
    gaussian_kl,
    persistence_error_ratio,
    score_array,
)
from components.learn.windows import build_windows

B, T, F = 16, 6, 5


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _batch(seed=0, b=B):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(b, 1, F, generator=g)
    return (base + 0.3 * torch.randn(b, T, F, generator=g)).float()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_loss_is_finite_and_decreases(name):
    model = build_model(name, n_features=F, window=T, hidden=16)
    batch = _batch()
    with torch.no_grad():
        model.prepare([batch])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = model.loss(batch)
        assert loss.dim() == 0 and torch.isfinite(loss)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_score_shapes(name):
    model = build_model(name, n_features=F, window=T, hidden=8).eval()
    with torch.no_grad():
        out = model.score(_batch())
    assert out.window_scores.shape == (B,)
    assert out.flow_errors.shape == (B, T, F)
    assert out.flow_scores.shape == (B, T)
    assert torch.isfinite(out.window_scores).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_state_dict_round_trip_restores_the_whole_scorer(name, tmp_path):
    model = build_model(name, n_features=F, window=T, hidden=8)
    with torch.no_grad():
        model.prepare([_batch(1)])
    model.eval()
    with torch.no_grad():
        model.calibrate([_batch(2), _batch(3)])
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    hparams = json.loads(json.dumps(model.hparams))  # what the packager writes next to the weights
    again = build_model(name, **hparams)
    again.load_state_dict(torch.load(path, weights_only=True), strict=True)
    windows = _batch(4).numpy()
    a, b = score_array(model, windows), score_array(again, windows)
    np.testing.assert_array_equal(a.window_scores, b.window_scores)
    np.testing.assert_array_equal(a.flow_errors, b.flow_errors)
    # a fresh (uncalibrated) model scores differently: the buffers carried real state
    if name in ("sparse_lstm_ae", "iae_lstm_kl"):
        fresh = build_model(name, **hparams)
        fresh.load_state_dict({k: v for k, v in model.state_dict().items()}, strict=True)
        assert bool(fresh.calibrated)


def test_sparse_calibrated_score_is_the_mahalanobis_distance_of_abs_errors():
    model = build_model("sparse_lstm_ae", n_features=F, window=T, hidden=8).eval()
    with torch.no_grad():
        before = model.score(_batch(5))
        torch.testing.assert_close(before.window_scores, before.flow_errors.mean(dim=(1, 2)))  # MSE fallback
        model.calibrate([_batch(6, b=64)])
        out = model.score(_batch(5))
    e = out.flow_errors.sqrt() - model.error_mean
    expected = torch.einsum("btf,fg,btg->bt", e, model.error_precision, e)
    torch.testing.assert_close(out.flow_scores, expected)
    torch.testing.assert_close(out.window_scores, expected.mean(dim=1))
    assert torch.allclose(model.error_precision, model.error_precision.T, atol=1e-4)


def test_sparse_loss_includes_the_l1_penalty_of_the_relu_gate():
    model = build_model("sparse_lstm_ae", n_features=F, window=T, hidden=8, l1=0.5)
    with torch.no_grad():
        model.gate.fill_(2.0)
        model.gate[0, 0] = -3.0  # relu -> 0
        batch = _batch()
        mse = torch.mean((model.reconstruct(batch) - batch) ** 2)
        expected_pen = (2.0 * (T * F - 1)) / (T * F)
        torch.testing.assert_close(model.loss(batch), mse + 0.5 * torch.tensor(expected_pen))


def test_gaussian_kl_equals_the_closed_form_on_a_hand_computed_case():
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, np.log(2.0)], [0.0, 0.0]], dtype=torch.float32)
    # 0.5*(1 + 1 - 1 - 0) + 0.5*(0 + 2 - 1 - ln 2) = 0.5 + 0.5 - 0.5 ln 2
    torch.testing.assert_close(gaussian_kl(mu, logvar), torch.tensor([1.0 - 0.5 * np.log(2.0), 0.0], dtype=torch.float32))


def test_iae_loss_is_recon_plus_svdd_plus_kl_and_centre_avoids_zero():
    model = build_model("iae_lstm_kl", n_features=F, window=T, hidden=8, latent=4, lambda_svdd=0.3, lambda_kl=0.2)
    batch = _batch()
    with torch.no_grad():
        model.prepare([batch])
        assert (model.center.abs() >= model.svdd_eps - 1e-7).all()
        model.eval()  # z = mu: the loss is deterministic and checkable
        mu, logvar = model.encode(batch)
        x_hat = model.decode(mu, T)
        expected = (
            torch.mean((x_hat - batch) ** 2)
            + 0.3 * torch.mean(((mu - model.center) ** 2).sum(-1))
            + 0.2 * torch.mean(gaussian_kl(mu, logvar))
        )
        torch.testing.assert_close(model.loss(batch), expected)


def test_iae_lstm_runs_over_time_not_over_the_batch():
    """Scores of a window do not depend on the other windows in the batch."""
    model = build_model("iae_lstm_kl", n_features=F, window=T, hidden=8).eval()
    batch = _batch()
    with torch.no_grad():
        whole = model.score(batch).window_scores
        alone = torch.cat([model.score(batch[i:i + 1]).window_scores for i in range(B)])
    torch.testing.assert_close(whole, alone)


def test_attention_memory_is_k_by_d_and_decoder_reads_only_the_memory():
    k, d = 3, 8
    model = build_model("attention_ae", n_features=F, window=T, hidden=d, slots=k).eval()
    batch = _batch()
    with torch.no_grad():
        mem = model.memory(batch)
        assert mem.shape == (B, k, d)
        # the reconstruction is a function of the memory alone: same memory -> same output
        out = model.read_memory(mem, T)
        dec, _ = model.decoder(out)
        torch.testing.assert_close(model.output(dec), model.reconstruct(batch))
        # the decoder's attention keys/values are the memory: swapping it changes everything
        other = model.read_memory(torch.zeros_like(mem), T)
        assert not torch.allclose(other, out)
        assert out.shape == (B, T, d)


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_baselines_fit_score_and_round_trip_json(name):
    windows = _batch(7, b=40).numpy()
    model = build_model(name, n_features=F, window=T).fit(windows)
    out = score_array(model, windows)
    assert out.window_scores.shape == (40,) and out.flow_errors.shape == (40, T, F)
    state = json.loads(json.dumps(model.to_dict()))
    again = type(model).from_dict(state)  # fitted state included: no refit, no pickle
    np.testing.assert_allclose(score_array(again, windows).window_scores, out.window_scores, rtol=1e-6)


def test_persistence_is_the_lag_one_error():
    w = np.arange(2 * 3 * 1, dtype=np.float32).reshape(2, 3, 1) ** 2
    out = build_model("persistence", 1, 3).score_windows(w)
    np.testing.assert_allclose(out.flow_errors[0, :, 0], [0, 1, 9])
    assert out.window_scores[0] == pytest.approx(5.0)


def test_persistence_error_ratio_against_known_answers():
    windows = _batch(8).numpy()  # flows of a window: one level (variance 1) plus noise (sd 0.3)
    assert persistence_error_ratio(build_model("persistence", F, T), windows) == pytest.approx(1.0)
    # an untrained network errs by about the flows' mean square (1.09), persistence by twice the
    # noise's (0.18): the ratio is about 6
    torch.manual_seed(0)
    assert 3 < persistence_error_ratio(build_model("lstm_ae_seq", F, T, hidden=8), windows) < 20
    constant = np.repeat(windows[:, :1], T, axis=1)  # persistence is exact: no ratio to speak of
    assert persistence_error_ratio(build_model("lstm_ae_seq", F, T, hidden=8), constant) == np.inf
    with pytest.raises(ValueError, match="at least 2 flows"):
        persistence_error_ratio(build_model("lstm_ae_seq", F, 1, hidden=8), windows[:, :1])


def test_score_array_accepts_windows_objects_in_batches():
    x = np.random.default_rng(0).normal(size=(50, F)).astype(np.float32)
    w = build_windows(x, T, 2)
    model = build_model("lstm_ae", F, T, hidden=8)
    a = score_array(model, w, batch_size=7)
    b = score_array(model, w.values, batch_size=1000)
    np.testing.assert_allclose(a.window_scores, b.window_scores, rtol=1e-5, atol=1e-6)


def test_unknown_model_names_the_valid_ones():
    with pytest.raises(ValueError, match="nope.*lstm_ae.*isolation_forest"):
        build_model("nope", 3, 4)


def test_isolation_forest_state_refuses_unexpected_types():
    import base64

    import skops.io
    from sklearn.linear_model import LinearRegression

    state = build_model("isolation_forest", F, T).to_dict()
    state["forest_skops"] = base64.b64encode(skops.io.dumps(LinearRegression())).decode()
    with pytest.raises(ValueError, match="isolation_forest state holds a LinearRegression"):
        type(build_model("isolation_forest", F, T)).from_dict(state)
