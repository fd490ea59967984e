"""A flow profile: the few distributions that describe one kind of traffic, and how to sample it.

Benign services and attack families are both profiles, so they differ only in their numbers (and the
attacks in their endpoints and timing), never in how features are derived (``flowstats``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MAX_DURATION = 119_999_999  # CICFlowMeter's 120 s flow timeout

LogNormal = tuple[float, float]  # (median, sigma)
Choice = tuple[tuple[float, ...], tuple[float, ...]]  # (values, weights)


@dataclass(frozen=True)
class FlowProfile:
    """Distributions of one kind of flow; medians and sigmas of log-normals, choices with weights."""

    name: str
    weight: float
    proto: int
    endpoints: str                      # how identifiers are drawn (see endpoints.py)
    ports: Choice = ((0,), (1.0,))      # destination ports (ignored for 'ephemeral' endpoints)
    nf: LogNormal = (2, 0.5)
    nf_max: int = 5000
    nb_ratio: LogNormal = (1.0, 0.3)
    p_nb0: float = 0.0
    f_hi: LogNormal = (40, 0.3)
    b_hi: LogNormal = (100, 0.5)
    hi_cap: int = 1460
    p_f_lo0: float = 0.0               # chance the smallest forward packet carries no payload
    p_b_lo0: float = 0.0
    lo_frac: tuple[float, float] = (0.5, 1.0)   # smallest packet as a fraction of the largest
    dur: LogNormal = (20_000, 1.5)
    fwd_iat_frac: LogNormal = (0.7, 0.3)
    bwd_iat_frac: LogNormal = (0.7, 0.3)
    iat_lo: LogNormal = (3, 1.0)
    hdr_f: Choice = ((20, 32), (0.6, 0.4))
    hdr_b: Choice = ((20, 32), (0.6, 0.4))
    win_f: Choice = ((-1,), (1.0,))
    win_b: Choice = ((-1,), (1.0,))
    flags: dict[str, float] = field(default_factory=dict)
    p_idle: float = 0.0


def lognormal(rng: np.random.Generator, spec: LogNormal, n: int) -> np.ndarray:
    median, sigma = spec
    return np.exp(rng.normal(np.log(median), sigma, n))


def choice(rng: np.random.Generator, spec: Choice, n: int) -> np.ndarray:
    values, weights = spec
    w = np.asarray(weights, dtype=np.float64)
    return np.asarray(values, dtype=np.float64)[rng.choice(len(values), size=n, p=w / w.sum())]


def _payload(rng, n_pkts, hi_spec, cap, p_lo0, lo_frac, size):
    """hi, lo, mid payload levels of one direction (all 0 without packets)."""
    hi = np.clip(np.rint(lognormal(rng, hi_spec, size)), 0, cap)
    lo = np.floor(hi * rng.uniform(lo_frac[0], lo_frac[1], size))
    lo = np.where(rng.random(size) < p_lo0, 0.0, lo)
    mid = np.floor(lo + (hi - lo) * rng.random(size) ** 2)
    none = n_pkts == 0
    return np.where(none, 0, hi), np.where(none, 0, lo), np.where(none, 0, mid)


def sample_profile(rng: np.random.Generator, prof: FlowProfile, n: int) -> dict[str, np.ndarray]:
    """Primitives of n flows of one profile (identifiers excluded)."""
    nf = np.clip(np.rint(lognormal(rng, prof.nf, n)), 1, prof.nf_max)
    nb = np.clip(np.rint(nf * lognormal(rng, prof.nb_ratio, n)), 0, prof.nf_max)
    nb = np.where(rng.random(n) < prof.p_nb0, 0, nb)
    nf = np.where(nf + nb < 2, 2, nf)  # the real files hold no single-packet flows
    f_hi, f_lo, f_mid = _payload(rng, nf, prof.f_hi, prof.hi_cap, prof.p_f_lo0, prof.lo_frac, n)
    b_hi, b_lo, b_mid = _payload(rng, nb, prof.b_hi, prof.hi_cap, prof.p_b_lo0, prof.lo_frac, n)
    dur = np.clip(np.rint(lognormal(rng, prof.dur, n)), 1, MAX_DURATION)
    fwd_tot = np.where(nb == 0, dur, np.floor(dur * np.minimum(lognormal(rng, prof.fwd_iat_frac, n), 1.0)))
    bwd_tot = np.floor(dur * np.minimum(lognormal(rng, prof.bwd_iat_frac, n), 1.0))
    fwd_tot, bwd_tot = np.minimum(np.maximum(fwd_tot, nf - 1), dur), np.minimum(np.maximum(bwd_tot, nb - 1), dur)
    flags = {k: (rng.random(n) < prof.flags.get(k, 0.0)).astype(np.float64)
             for k in ("fin", "syn", "rst", "psh", "ack", "urg", "ece")}
    long_flow = (dur > 5_000_000) & (nf + nb >= 4)
    idle_k = np.where(long_flow & (rng.random(n) < prof.p_idle), rng.integers(1, 4, n), 0)
    return {
        "nf": nf, "nb": nb, "f_hi": f_hi, "f_lo": f_lo, "f_mid": f_mid, "b_hi": b_hi, "b_lo": b_lo, "b_mid": b_mid,
        "dur": dur, "fwd_iat_total": np.where(nf >= 2, fwd_tot, 0), "bwd_iat_total": np.where(nb >= 2, bwd_tot, 0),
        "iat_lo": lognormal(rng, prof.iat_lo, n), "iat_skew": rng.random(n) ** 3,
        "hdr_f": choice(rng, prof.hdr_f, n), "hdr_b": choice(rng, prof.hdr_b, n),
        "win_f": choice(rng, prof.win_f, n), "win_b": choice(rng, prof.win_b, n),
        "idle_k": idle_k, "idle_frac": rng.uniform(0.5, 0.95, n), "idle_skew": rng.random(n),
        "proto": np.full(n, prof.proto), **flags,
    }
