"""``lstm_ae``: encoder LSTM -> last hidden state repeated T times -> decoder LSTM -> linear.

Why: the single hidden vector is a bottleneck that forces a summary of the window, so windows
unlike the benign training traffic reconstruct badly. Source: EncDec-AD (Malhotra et al. 2016);
the Keras ``RepeatVector`` autoencoder.
"""
from __future__ import annotations

from torch import Tensor, nn

from components.learn.models.base import WindowModel


class LSTMAutoencoder(WindowModel):
    name = "lstm_ae"

    def __init__(self, n_features: int, window: int, hidden: int = 32, num_layers: int = 1) -> None:
        super().__init__(n_features, window, hidden, num_layers=num_layers)
        self.encoder = nn.LSTM(n_features, hidden, num_layers=num_layers, batch_first=True)
        self.decoder = nn.LSTM(hidden, hidden, num_layers=num_layers, batch_first=True)
        self.output = nn.Linear(hidden, n_features)

    def encode(self, batch: Tensor) -> Tensor:
        """[B, hidden]: the encoder's last hidden state (top layer)."""
        _, (h_n, _) = self.encoder(batch)
        return h_n[-1]

    def decode(self, summary: Tensor, steps: int) -> Tensor:
        repeated = summary.unsqueeze(1).expand(-1, steps, -1)  # RepeatVector
        out, _ = self.decoder(repeated.contiguous())
        return self.output(out)

    def reconstruct(self, batch: Tensor) -> Tensor:
        self._check(batch)
        return self.decode(self.encode(batch), batch.shape[1])
