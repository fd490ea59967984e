"""``attention_ae``: feature attention through a fixed k x d memory that the decoder reads.

Why: plain attention from decoder step t to encoder step t lets an autoencoder copy its input.
Here k learned query slots attend over the T x d encoder states to build a memory [B, k, d]
whose size does not depend on T; the decoder's T learned position queries attend *only* to that
memory (its keys and values are the memory, never the input positions), so the bottleneck
survives. Source: the answer on attention for LSTM-AE anomaly detection cited in DESIGN.md.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from components.learn.models.base import WindowModel


def _heads_for(dim: int, wanted: int) -> int:
    for h in range(min(wanted, dim), 0, -1):
        if dim % h == 0:
            return h
    return 1


class AttentionAutoencoder(WindowModel):
    name = "attention_ae"

    def __init__(self, n_features: int, window: int, hidden: int = 32, slots: int = 4, heads: int = 2) -> None:
        super().__init__(n_features, window, hidden, slots=slots, heads=heads)
        n_heads = _heads_for(hidden, heads)
        self.slots = int(slots)
        self.encoder = nn.LSTM(n_features, hidden, batch_first=True)
        self.slot_queries = nn.Parameter(torch.randn(slots, hidden) * 0.1)
        self.write = nn.MultiheadAttention(hidden, n_heads, batch_first=True)
        self.position_queries = nn.Parameter(torch.randn(window, hidden) * 0.1)
        self.read = nn.MultiheadAttention(hidden, n_heads, batch_first=True)
        self.decoder = nn.LSTM(hidden, hidden, batch_first=True)
        self.output = nn.Linear(hidden, n_features)

    def memory(self, batch: Tensor) -> Tensor:
        """[B, k, d]: the k slots' summary of the encoder states (independent of T)."""
        self._check(batch)
        states, _ = self.encoder(batch)
        queries = self.slot_queries.unsqueeze(0).expand(batch.shape[0], -1, -1)
        mem, _ = self.write(queries, states, states, need_weights=False)
        return mem

    def read_memory(self, mem: Tensor, steps: int) -> Tensor:
        """[B, steps, d]: position queries attend to the memory only."""
        if steps > self.position_queries.shape[0]:
            raise ValueError(f"{self.name} was built for windows of {self.position_queries.shape[0]} flows, got {steps}")
        queries = self.position_queries[:steps].unsqueeze(0).expand(mem.shape[0], -1, -1)
        read, _ = self.read(queries, mem, mem, need_weights=False)
        return read

    def reconstruct(self, batch: Tensor) -> Tensor:
        read = self.read_memory(self.memory(batch), batch.shape[1])
        out, _ = self.decoder(read)
        return self.output(out)
