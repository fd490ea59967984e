"""On synthetic days with attack bursts, every family ranks attack windows above benign ones better
than the persistence baseline (window-level AUROC).

Protocol (the DESIGN.md one, in miniature): flows in time order; the transform is fitted on benign
flows of the early part of the day only; the families train on benign-only windows of that part,
calibrate on its later benign windows (strictly later, no shared flow), and are scored on every
window of the rest of the day, where a window is positive when it holds an attack flow.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from components.jobs import SplitConfig, TrainConfig
from components.learn.dataset import TEST, FlowSet, prepare
from components.learn.features import log_features, select_features
from components.learn.models import MODEL_NAMES, build_model, score_array
from components.learn.training import train_model
from components.learn.windows import benign_window_mask
from components.synth import synth_frame

WINDOW = 8
ROWS = 6000
EPOCHS = 6


@pytest.fixture(scope="module", autouse=True)
def _deterministic():
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(previous)


def _flows(frame) -> FlowSet:
    """A synthetic day's frame as the :class:`FlowSet` ``load_flows`` reads from curated files."""
    names = select_features(frame.columns)
    labels = frame["label"].astype(str).to_numpy()
    label_names = list(dict.fromkeys(labels.tolist()))
    codes = np.asarray([label_names.index(v) for v in labels], dtype=np.int16)
    n = len(frame)
    return FlowSet([Path("frame")], np.zeros(n, np.int32), np.arange(1, n + 1, dtype=np.int64), codes,
                   label_names, log_features(frame[names], names), names)


def _prepare(day: str):
    """The early, attack-free part of the day trains, validates and calibrates (split by
    ``learn.split``, the one split every stage uses); the rest of the day is the test."""
    frame = synth_frame(ROWS, seed=0, day=day)
    flows = _flows(frame)
    benign = flows.is_benign
    first_attack = int(np.flatnonzero(~benign)[0])
    early = np.arange(len(frame)) < int(first_attack * 0.75)
    data = prepare(flows, early, SplitConfig(validation=0.2, calibration=0.05, test=0.0), WINDOW, 2)
    test = data.window_roles == TEST
    test_idx = np.flatnonzero(test)
    positive = ~benign_window_mask(benign, data.windows)[test_idx]
    return data.windows, data.train_idx, data.val_idx, data.windows.take(test_idx), positive


@pytest.fixture(scope="module", params=["friday_ddos", "friday_portscan"])
def day_data(request):
    fit_windows, train_idx, val_idx, test, positive = _prepare(request.param)
    assert 0 < positive.sum() < len(positive)
    persistence = build_model("persistence", fit_windows.n_features, WINDOW).fit(fit_windows.take(train_idx))
    assert fit_windows.window == WINDOW
    baseline_auc = roc_auc_score(positive, score_array(persistence, test).window_scores)
    return request.param, fit_windows, train_idx, val_idx, test, positive, baseline_auc


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_family_beats_persistence_on_attack_windows(name, day_data):
    day, fit_windows, train_idx, val_idx, test, positive, baseline_auc = day_data
    cfg = TrainConfig(model=name, epochs=EPOCHS, window=WINDOW, hidden=32, batch_size=64, lr=3e-3,
                      patience=EPOCHS, device="cpu", seed=0)
    result = train_model(fit_windows, train_idx, val_idx, cfg, progress=False)
    history = [h.train_loss for h in result.history]
    assert history[-1] < history[0]
    model = result.model
    scores = score_array(model, test).window_scores
    assert np.isfinite(scores).all()
    auc = roc_auc_score(positive, scores)
    print(f"{day} {name}: AUROC {auc:.3f} vs persistence {baseline_auc:.3f}")
    assert auc > baseline_auc, f"{day}: {name} AUROC {auc:.3f} <= persistence {baseline_auc:.3f}"
