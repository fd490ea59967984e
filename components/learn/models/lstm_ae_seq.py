"""``lstm_ae_seq``: the decoder reads the encoder's whole output sequence and its final state.

Why it is here: this common Keras variant has no bottleneck (step t of the decoder sees encoder
output t), so it tends to learn the identity and reconstructs attacks as well as benign flows. It
is kept as a contrast, and :func:`persistence_error_ratio` checks it against the persistence
baseline (a ratio near or below 1 on benign validation windows means "it mostly copies").
"""
from __future__ import annotations

import numpy as np
from torch import Tensor

from components.learn.models.lstm_ae import LSTMAutoencoder


class LSTMSeqAutoencoder(LSTMAutoencoder):
    """The same layers as ``lstm_ae``; only the decoder's input differs (no RepeatVector)."""

    name = "lstm_ae_seq"

    def reconstruct(self, batch: Tensor) -> Tensor:
        self._check(batch)
        enc_out, state = self.encoder(batch)
        dec_out, _ = self.decoder(enc_out, state)
        return self.output(dec_out)


def persistence_error_ratio(model, val_windows: np.ndarray, batch_size: int = 4096, device="cpu") -> float:
    """Mean squared reconstruction error of ``model`` / that of the persistence baseline.

    Both are measured on the same windows and the same positions (t >= 1, where persistence has a
    prediction), so the ratio is like for like. The trainer logs it for ``lstm_ae_seq``.
    """
    from components.learn.models import score_array
    from components.learn.models.baselines import PersistenceBaseline

    val_windows = np.asarray(val_windows)
    if val_windows.shape[1] < 2:
        raise ValueError("persistence needs windows of at least 2 flows")
    model_err = score_array(model, val_windows, batch_size=batch_size, device=device).flow_errors
    base_err = PersistenceBaseline().score_windows(val_windows).flow_errors
    denom = float(base_err[:, 1:].mean())
    return float(model_err[:, 1:].mean()) / denom if denom > 0 else float("inf")
