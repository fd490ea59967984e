"""``iae_lstm_kl``: a variational LSTM autoencoder over time, pulled to a deep-SVDD centre.

Why: the reconstruction error alone misses attacks that an autoencoder happens to reconstruct;
the distance of the window's latent z to a centre c of benign latents (deep SVDD, Ruff et al.
2018) is a second, complementary signal, and the KL term keeps the latent space regular. Source:
Huang et al., IAE-LSTM-KL (IEEE TIM 2024). Two deliberate departures from its public code: the
LSTM runs over the window's *time* axis (theirs runs across the batch), and the KL term is the
real closed-form Gaussian KL(q(z|x) || N(0, I)) (theirs compares to a random target).

loss = mse(x, x_hat) + lambda_svdd * mean ||z - c||^2 + lambda_kl * mean KL
score = (recon - mu_r) / sd_r + (dist - mu_d) / sd_d, both standardised on benign validation
windows in :meth:`calibrate` (raw recon + dist before calibration); at scoring z is the mean.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from components.learn.models.base import ScoreOutput, WindowModel, float32_off_autocast


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per sample: 0.5 * sum(mu^2 + var - 1 - logvar)."""
    return 0.5 * torch.sum(mu.pow(2) + logvar.exp() - 1.0 - logvar, dim=-1)


#: Initial log-variance of q(z|x): small posterior noise at the start, so the decoder learns to use z
#: before the KL term widens it (with logvar = 0 the noise swamps the signal: posterior collapse).
LOGVAR_INIT = -4.0


class IAELSTMKL(WindowModel):
    name = "iae_lstm_kl"

    def __init__(
        self,
        n_features: int,
        window: int,
        hidden: int = 32,
        latent: int = 16,
        lambda_svdd: float = 0.01,
        lambda_kl: float = 1e-3,
        svdd_eps: float = 0.1,
    ) -> None:
        super().__init__(
            n_features, window, hidden, latent=latent, lambda_svdd=lambda_svdd, lambda_kl=lambda_kl, svdd_eps=svdd_eps
        )
        self.latent = int(latent)
        self.lambda_svdd = float(lambda_svdd)
        self.lambda_kl = float(lambda_kl)
        self.svdd_eps = float(svdd_eps)
        self.flow_encoder = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.temporal = nn.LSTM(hidden, hidden, batch_first=True)  # over the window's T axis
        self.to_mu = nn.Linear(hidden, latent)
        self.to_logvar = nn.Linear(hidden, latent)
        nn.init.constant_(self.to_logvar.bias, LOGVAR_INIT)
        self.from_latent = nn.Linear(latent, hidden)
        self.decoder = nn.LSTM(hidden, hidden, batch_first=True)
        self.output = nn.Linear(hidden, n_features)
        self.register_buffer("center", torch.zeros(latent))
        self.register_buffer("recon_mean", torch.zeros(()))
        self.register_buffer("recon_std", torch.ones(()))
        self.register_buffer("dist_mean", torch.zeros(()))
        self.register_buffer("dist_std", torch.ones(()))
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool))

    def encode(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        """(mu, logvar), each [B, latent]."""
        self._check(batch)
        per_flow = self.flow_encoder(batch)  # [B, T, hidden]
        _, (h_n, _) = self.temporal(per_flow)
        h = h_n[-1]
        return self.to_mu(h), self.to_logvar(h).clamp(-10.0, 10.0)

    def decode(self, z: Tensor, steps: int) -> Tensor:
        seed = self.from_latent(z).unsqueeze(1).expand(-1, steps, -1).contiguous()
        out, _ = self.decoder(seed)
        return self.output(out)

    def forward_parts(self, batch: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        mu, logvar = self.encode(batch)
        if self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        else:
            z = mu
        return self.decode(z, batch.shape[1]), z, mu, logvar

    def reconstruct(self, batch: Tensor) -> Tensor:
        mu, _ = self.encode(batch)
        return self.decode(mu, batch.shape[1])

    def loss(self, batch: Tensor) -> Tensor:
        x_hat, z, mu, logvar = self.forward_parts(batch)
        with float32_off_autocast(batch.device.type):
            recon = torch.mean((x_hat.float() - batch.float()) ** 2)
            svdd = torch.mean(torch.sum((z.float() - self.center) ** 2, dim=-1))
            kl = torch.mean(gaussian_kl(mu.float(), logvar.float()))
            return recon + self.lambda_svdd * svdd + self.lambda_kl * kl

    def _parts(self, batch: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mu, _ = self.encode(batch)
        x_hat = self.decode(mu, batch.shape[1])
        with float32_off_autocast(batch.device.type):
            errors = (x_hat.float() - batch.float()) ** 2
            dist = torch.sum((mu.float() - self.center) ** 2, dim=-1)
        return errors, errors.mean(dim=(1, 2)), dist

    def score(self, batch: Tensor) -> ScoreOutput:
        errors, recon, dist = self._parts(batch)
        if bool(self.calibrated):
            window = (recon - self.recon_mean) / self.recon_std + (dist - self.dist_mean) / self.dist_std
        else:
            window = recon + dist
        return ScoreOutput(window_scores=window, flow_errors=errors)

    @torch.no_grad()
    def prepare(self, batches: Iterable[Tensor]) -> None:
        """Deep-SVDD centre: mean of the initial latent means; near-zero coordinates -> +-eps
        (a centre coordinate at 0 lets the network reach it trivially with zero weights)."""
        total, count = None, 0
        for b in batches:
            mu, _ = self.encode(b)
            s = mu.float().sum(dim=0)
            total = s if total is None else total + s
            count += len(b)
        if count == 0:
            raise ValueError(f"{self.name}.prepare needs at least one benign training batch")
        c = total / count
        eps = self.svdd_eps
        c = torch.where((c.abs() < eps) & (c < 0), torch.full_like(c, -eps), c)
        c = torch.where((c.abs() < eps) & (c >= 0), torch.full_like(c, eps), c)
        self.center.copy_(c.to(self.center.dtype))

    @torch.no_grad()
    def calibrate(self, batches: Iterable[Tensor]) -> None:
        recons, dists = [], []
        for b in batches:
            _, recon, dist = self._parts(b)
            recons.append(recon)
            dists.append(dist)
        if not recons:
            raise ValueError(f"{self.name}.calibrate needs at least one benign validation batch")
        r, d = torch.cat(recons), torch.cat(dists)
        floor = 1e-8
        self.recon_mean.copy_(r.mean())
        self.recon_std.copy_(r.std(unbiased=False).clamp_min(floor))
        self.dist_mean.copy_(d.mean())
        self.dist_std.copy_(d.std(unbiased=False).clamp_min(floor))
        self.calibrated.fill_(True)
