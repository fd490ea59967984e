"""What every window model shares: the scoring output, the torch base class, a minimal fit loop.

Why one base class: the trainer, the calibration step, the MLflow pyfunc and the scorer treat all
families alike (``loss`` to train, ``score`` to rank windows, ``prepare``/``calibrate`` for the
state some families fit around training). Post-training state lives in registered *buffers* so a
plain ``state_dict`` (loaded with ``weights_only=True``, no pickled classes) restores the whole
scorer, and ``build_model(name, **model.hparams)`` rebuilds the module it loads into.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn


@dataclass
class ScoreOutput:
    """Scores of B windows: higher = more anomalous.

    ``window_scores`` [B]; ``flow_errors`` [B, T, F] per-flow, per-feature error (what explains a
    score); ``flow_scores`` [B, T] per-flow score (defaults to the feature-mean of
    ``flow_errors``; families with a different scoring rule fill it themselves). Arrays are numpy
    from :func:`components.learn.models.score_array`, tensors from ``WindowModel.score``.
    """

    window_scores: Any
    flow_errors: Any
    flow_scores: Any = None

    def __post_init__(self) -> None:
        if self.flow_scores is None and self.flow_errors is not None:
            self.flow_scores = self.flow_errors.mean(-1) if hasattr(self.flow_errors, "mean") else None


def float32_off_autocast(device_type: str):
    """Context that turns autocast off, so losses and statistics are computed in float32."""
    try:
        return torch.autocast(device_type=device_type, enabled=False)
    except RuntimeError:  # device type without autocast support
        return contextlib.nullcontext()


class WindowModel(nn.Module):
    """Base class of the neural families. Input batches are float [B, T, F] tensors."""

    name: str = "window_model"
    trainable: bool = True

    def __init__(self, n_features: int, window: int, hidden: int = 32, **extra: Any) -> None:
        super().__init__()
        if n_features < 1 or window < 1 or hidden < 1:
            raise ValueError(f"n_features, window and hidden must be >= 1 (got {n_features}, {window}, {hidden})")
        self.n_features = int(n_features)
        self.window = int(window)
        self.hidden = int(hidden)
        self.hparams: dict[str, Any] = {"n_features": self.n_features, "window": self.window, "hidden": self.hidden, **extra}

    # --- to be provided by the families -------------------------------------------------------
    def reconstruct(self, batch: Tensor) -> Tensor:
        """x_hat [B, T, F] (the autoencoder families)."""
        raise NotImplementedError

    def loss(self, batch: Tensor) -> Tensor:
        """Scalar training loss (reconstruction MSE by default), computed in float32."""
        x_hat = self.reconstruct(batch)
        with float32_off_autocast(batch.device.type):
            return torch.mean((x_hat.float() - batch.float()) ** 2)

    def score(self, batch: Tensor) -> ScoreOutput:
        """Window score = mean squared reconstruction error (override for other rules)."""
        errors = self.flow_squared_errors(batch)
        return ScoreOutput(window_scores=errors.mean(dim=(1, 2)), flow_errors=errors)

    def prepare(self, batches: Iterable[Tensor]) -> None:
        """Called once before training with benign training batches; default: nothing."""

    def calibrate(self, batches: Iterable[Tensor]) -> None:
        """Called after training with benign *validation* batches; default: nothing."""

    # --- helpers ---------------------------------------------------------------------------------
    def flow_squared_errors(self, batch: Tensor) -> Tensor:
        x_hat = self.reconstruct(batch)
        with float32_off_autocast(batch.device.type):
            return (x_hat.float() - batch.float()) ** 2

    def _check(self, batch: Tensor) -> None:
        if batch.dim() != 3 or batch.shape[-1] != self.n_features:
            raise ValueError(f"{self.name}: expected [B, T, {self.n_features}], got {tuple(batch.shape)}")
