"""``sparse_lstm_ae``: a trainable ReLU gate with an L1 penalty on the input, then ``lstm_ae``;
windows are scored by the Mahalanobis distance of their reconstruction errors.

Why: with many weakly informative flow features, the L1-penalised gate (``relu(w) * x``, w
initialised to 1) learns to switch off inputs the autoencoder does not need, and the Mahalanobis
distance weighs each feature's error by how much it varies (and co-varies) on benign traffic, so
a feature that is always hard to reconstruct does not dominate. Source: Gugulothu, Malhotra, Vig,
Shroff, "Sparse neural networks for anomaly detection in high-dimensional time series" (2018);
the error model is EncDec-AD's (Malhotra et al. 2016).

Scoring: per flow, the absolute error vector e_t = |x_t - x_hat_t| (dimension F) has Mahalanobis
distance d_t^2 = (e_t - mu)^T P (e_t - mu) with mu and P (Ledoit-Wolf shrinkage covariance,
inverted; always invertible) fitted in :meth:`calibrate` on benign validation windows; the window
score is the mean of d_t^2 over its flows (``flow_scores`` holds d_t^2). Before calibration the
score falls back to the mean squared error.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor, nn

from components.learn.models.base import ScoreOutput, float32_off_autocast
from components.learn.models.lstm_ae import LSTMAutoencoder


class SparseLSTMAutoencoder(LSTMAutoencoder):
    name = "sparse_lstm_ae"

    def __init__(self, n_features: int, window: int, hidden: int = 32, num_layers: int = 1, l1: float = 1e-3) -> None:
        super().__init__(n_features, window, hidden, num_layers=num_layers)
        self.hparams["l1"] = float(l1)
        self.l1 = float(l1)
        self.gate = nn.Parameter(torch.ones(window, n_features))
        self.register_buffer("error_mean", torch.zeros(n_features))
        self.register_buffer("error_precision", torch.eye(n_features))
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool))

    def gated(self, batch: Tensor) -> Tensor:
        steps = batch.shape[1]
        if steps > self.gate.shape[0]:
            raise ValueError(f"{self.name} was built for windows of {self.gate.shape[0]} flows, got {steps}")
        return torch.relu(self.gate[:steps]) * batch

    def reconstruct(self, batch: Tensor) -> Tensor:
        self._check(batch)
        return self.decode(self.encode(self.gated(batch)), batch.shape[1])

    def l1_penalty(self) -> Tensor:
        """Mean |relu(w)|, so ``l1`` does not depend on the window size or the feature count."""
        return torch.relu(self.gate.float()).mean()

    def loss(self, batch: Tensor) -> Tensor:
        return super().loss(batch) + self.l1 * self.l1_penalty()

    def mahalanobis(self, abs_errors: Tensor) -> Tensor:
        """[..., F] -> [...] squared Mahalanobis distance under the calibrated error model."""
        centred = abs_errors - self.error_mean
        return torch.einsum("...i,ij,...j->...", centred, self.error_precision, centred)

    def score(self, batch: Tensor) -> ScoreOutput:
        errors = self.flow_squared_errors(batch)
        if not bool(self.calibrated):
            return ScoreOutput(window_scores=errors.mean(dim=(1, 2)), flow_errors=errors)
        with float32_off_autocast(batch.device.type):
            flow_scores = self.mahalanobis(errors.sqrt())
        return ScoreOutput(window_scores=flow_scores.mean(dim=1), flow_errors=errors, flow_scores=flow_scores)

    #: Error vectors used to fit the error model at most: enough for an F x F covariance, and it
    #: bounds calibration memory on large validation sets (stride-1 windows repeat each flow T times).
    CALIBRATION_ROWS = 500_000

    @torch.no_grad()
    def calibrate(self, batches: Iterable[Tensor]) -> None:
        from sklearn.covariance import LedoitWolf

        chunks, rows = [], 0
        for b in batches:
            chunks.append(self.flow_squared_errors(b).sqrt().reshape(-1, self.n_features).cpu().numpy())
            rows += len(chunks[-1])
            if rows >= self.CALIBRATION_ROWS:
                break
        if not chunks:
            raise ValueError(f"{self.name}.calibrate needs at least one benign validation batch")
        errors = np.concatenate(chunks).astype(np.float64)
        if len(errors) < 2:
            raise ValueError(f"{self.name}.calibrate needs at least 2 flows, got {len(errors)}")
        lw = LedoitWolf(assume_centered=False).fit(errors)
        precision = np.linalg.pinv(lw.covariance_, hermitian=True)
        self.error_mean.copy_(torch.as_tensor(lw.location_, dtype=self.error_mean.dtype))
        self.error_precision.copy_(torch.as_tensor(precision, dtype=self.error_precision.dtype))
        self.calibrated.fill_(True)
