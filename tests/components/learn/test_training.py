"""The training loop on its own: device choice, early stopping, checkpoints, determinism."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from components.jobs import TrainConfig
from components.learn.training import check_model, resolve_device, train_model
from components.learn.windows import build_windows


@pytest.fixture
def windows():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 5)).astype(np.float32)
    w = build_windows(x, 6, 3)
    n = len(w)
    return w, np.arange(0, int(n * 0.7)), np.arange(int(n * 0.7) + 2, n)


def test_auto_device_takes_cuda_only_when_visible(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(RuntimeError, match="'cuda' requested but torch sees no CUDA GPU"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"
    assert resolve_device("cpu").type == "cpu"


def test_unknown_model_and_bad_values_are_refused():
    with pytest.raises(ValueError, match="unknown model 'gru'"):
        check_model(TrainConfig(model="gru"))
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)


def test_no_windows_is_a_clear_error(windows):
    w, train_idx, _ = windows
    with pytest.raises(ValueError, match="0 for validation"):
        train_model(w, train_idx, np.array([], dtype=np.int64), TrainConfig(device="cpu"), progress=False)


def test_early_stopping_keeps_the_best_epoch(windows):
    """With lr=0 nothing improves after epoch 1: training stops after `patience` more epochs."""
    w, train_idx, val_idx = windows
    cfg = TrainConfig(model="lstm_ae", epochs=10, window=6, hidden=4, lr=1e-12, patience=2,
                      device="cpu", seed=0)
    result = train_model(w, train_idx, val_idx, cfg, progress=False)
    assert result.stopped_early
    assert [h.epoch for h in result.history] == [1, 2, 3]
    assert result.best_epoch == 1


def test_checkpoint_every_epoch_and_resume_is_a_no_op_when_done(windows, tmp_path):
    w, train_idx, val_idx = windows
    cfg = TrainConfig(model="attention_ae", epochs=2, window=6, hidden=4, device="cpu", seed=1)
    ckpt = tmp_path / "ck" / "last.pt"
    seen = []
    first = train_model(w, train_idx, val_idx, cfg, checkpoint=ckpt,
                        on_epoch=lambda s: seen.append(torch.load(ckpt, weights_only=True)["epoch"]),
                        progress=False)
    assert seen == [1, 2]
    again = train_model(w, train_idx, val_idx, cfg, checkpoint=ckpt, resume=True, progress=False)
    assert again.resumed_from_epoch == 2 and again.history == []
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key])
