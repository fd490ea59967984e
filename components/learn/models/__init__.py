"""The model families (one module each), the baselines, and uniform construction and scoring."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from components.learn.models.attention_ae import AttentionAutoencoder
from components.learn.models.base import ScoreOutput, WindowModel
from components.learn.models.baselines import (
    BASELINES,
    IsolationForestBaseline,
    MahalanobisFlowBaseline,
    PCABaseline,
    PersistenceBaseline,
)
from components.learn.models.iae_lstm_kl import IAELSTMKL, gaussian_kl
from components.learn.models.lstm_ae import LSTMAutoencoder
from components.learn.models.lstm_ae_seq import LSTMSeqAutoencoder, persistence_error_ratio
from components.learn.models.sparse_lstm_ae import SparseLSTMAutoencoder

MODEL_NAMES: tuple[str, ...] = ("lstm_ae", "lstm_ae_seq", "attention_ae", "sparse_lstm_ae", "iae_lstm_kl")
BASELINE_NAMES: tuple[str, ...] = ("persistence", "pca", "isolation_forest", "mahalanobis_flow")

MODELS: dict[str, type[WindowModel]] = {
    cls.name: cls
    for cls in (LSTMAutoencoder, LSTMSeqAutoencoder, AttentionAutoencoder, SparseLSTMAutoencoder, IAELSTMKL)
}


def build_model(name: str, n_features: int, window: int, hidden: int = 32, **kwargs: Any):
    """A fresh model or baseline; ``build_model(name, **model.hparams)`` rebuilds a trained one.

    Baselines take their own hparams (``n_features``/``window``/``hidden`` are recorded but unused).
    """
    if name in MODELS:
        return MODELS[name](n_features=n_features, window=window, hidden=hidden, **kwargs)
    if name in BASELINES:
        model = BASELINES[name](**kwargs)
        model.hparams.update(n_features=int(n_features), window=int(window), hidden=int(hidden))
        return model
    valid = ", ".join(MODEL_NAMES + BASELINE_NAMES)
    raise ValueError(f"unknown model {name!r}; valid names: {valid}")


def score_array(model, windows, batch_size: int = 4096, device: str | torch.device = "cpu") -> ScoreOutput:
    """Score windows with any family or baseline, batch by batch; numpy ``ScoreOutput`` back.

    ``windows`` is a [W, T, F] array (a strided view is fine) or a
    :class:`components.learn.windows.Windows`, gathered one batch at a time. Torch models are put in
    eval mode and run under ``no_grad`` in float32 on ``device``.
    """
    from components.learn.windows import Windows

    if isinstance(windows, Windows):
        n = len(windows)

        def batch_at(lo: int) -> np.ndarray:
            return windows.take(np.arange(lo, min(lo + batch_size, n)))
    else:
        arr = np.asarray(windows)
        n = len(arr)

        def batch_at(lo: int) -> np.ndarray:
            return np.ascontiguousarray(arr[lo:lo + batch_size], dtype=np.float32)

    parts: list[ScoreOutput] = []
    if isinstance(model, torch.nn.Module):
        model.to(device)
        model.eval()
        with torch.inference_mode():
            for lo in range(0, n, batch_size):
                out = model.score(torch.from_numpy(batch_at(lo)).to(device))
                parts.append(ScoreOutput(
                    window_scores=out.window_scores.float().cpu().numpy(),
                    flow_errors=out.flow_errors.float().cpu().numpy(),
                    flow_scores=out.flow_scores.float().cpu().numpy(),
                ))
    else:
        for lo in range(0, n, batch_size):
            parts.append(model.score_windows(batch_at(lo)))
    if not parts:
        shape = getattr(windows, "shape", (0, getattr(windows, "window", 0), getattr(windows, "n_features", 0)))
        return ScoreOutput(np.zeros(0, np.float32), np.zeros((0, *shape[1:]), np.float32), np.zeros((0, shape[1]), np.float32))
    return ScoreOutput(
        window_scores=np.concatenate([p.window_scores for p in parts]),
        flow_errors=np.concatenate([p.flow_errors for p in parts]),
        flow_scores=np.concatenate([p.flow_scores for p in parts]),
    )


__all__ = [
    "BASELINES",
    "BASELINE_NAMES",
    "IAELSTMKL",
    "MODELS",
    "MODEL_NAMES",
    "AttentionAutoencoder",
    "IsolationForestBaseline",
    "LSTMAutoencoder",
    "LSTMSeqAutoencoder",
    "MahalanobisFlowBaseline",
    "PCABaseline",
    "PersistenceBaseline",
    "ScoreOutput",
    "SparseLSTMAutoencoder",
    "WindowModel",
    "build_model",
    "gaussian_kl",
    "persistence_error_ratio",
    "score_array",
]
