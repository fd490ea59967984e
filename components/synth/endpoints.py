"""Identifiers (IPs, ports, protocol) for each kind of endpoint pattern, on the CIC-IDS2017 testbed.

The victim network is 192.168.10.0/24 (DNS/DC 192.168.10.3, web server 192.168.10.50); attacks come
from 172.16.0.1. External servers come from a fixed pool built from a constant seed, so identifiers
never depend on anything but the run's seed.
"""
from __future__ import annotations

import numpy as np

from components.synth.specs import ATTACKER_IP, BOT_CNC_IP, BOT_HOSTS, VICTIM_IP

DNS_SERVER = "192.168.10.3"
INTERNAL_HOSTS = np.array([f"192.168.10.{h}" for h in (5, 8, 9, 12, 14, 15, 16, 17, 19, 25, 51)], dtype=object)
_HOST_WEIGHTS = np.array([3, 2, 2, 2, 2, 1, 6, 1, 2, 1, 1], dtype=np.float64) / 23.0
_LAN_SERVER = {21: VICTIM_IP, 22: VICTIM_IP, 80: VICTIM_IP, 8080: VICTIM_IP}


def _external_pool(size: int = 512) -> np.ndarray:
    """Public server addresses (CDNs, clouds) drawn once from a constant seed."""
    rng = np.random.default_rng(2017)
    first = np.array([104, 151, 199, 23, 52, 54, 13, 35, 173, 185, 216, 74, 64, 69, 31, 157, 172, 192])
    a = first[rng.integers(0, len(first), size)]
    b, c, d = rng.integers(0, 256, (3, size))
    b = np.where(a == 172, 217, b)  # 172.217.x.x (Google) rather than the private 172.16/12
    b = np.where(a == 192, 229, b)
    return np.array([f"{w}.{x}.{y}.{z}" for w, x, y, z in zip(a, b, c, np.maximum(d, 1))], dtype=object)


EXTERNAL = _external_pool()
_EXT_WEIGHTS = 1.0 / np.arange(1, len(EXTERNAL) + 1) ** 0.9  # a few servers get most flows, like the real data
_EXT_WEIGHTS /= _EXT_WEIGHTS.sum()


def _ephemeral(rng, n):
    return rng.integers(32768, 61000, n)


def _hosts(rng, n):
    return INTERNAL_HOSTS[rng.choice(len(INTERNAL_HOSTS), size=n, p=_HOST_WEIGHTS)]


def _external(rng, n):
    return EXTERNAL[rng.choice(len(EXTERNAL), size=n, p=_EXT_WEIGHTS)]


def draw_endpoints(rng: np.random.Generator, kind: str, dports: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """source_ip, source_port, destination_ip, destination_port for n flows of one endpoint kind."""
    dports = dports.astype(np.int64)
    if kind == "dns":
        return {"source_ip": _hosts(rng, n), "source_port": _ephemeral(rng, n),
                "destination_ip": np.full(n, DNS_SERVER, dtype=object), "destination_port": dports}
    if kind == "out":
        return {"source_ip": _hosts(rng, n), "source_port": _ephemeral(rng, n),
                "destination_ip": _external(rng, n), "destination_port": dports}
    if kind == "rev":  # server-side half of a connection: server port as source, client port as destination
        return {"source_ip": _external(rng, n), "source_port": dports,
                "destination_ip": _hosts(rng, n), "destination_port": _ephemeral(rng, n)}
    if kind == "lan":
        dst = np.array([_LAN_SERVER.get(int(p), DNS_SERVER) for p in dports], dtype=object)
        return {"source_ip": _hosts(rng, n), "source_port": _ephemeral(rng, n),
                "destination_ip": dst, "destination_port": dports}
    if kind == "bcast":
        return {"source_ip": _hosts(rng, n), "source_port": dports,
                "destination_ip": np.full(n, "192.168.10.255", dtype=object), "destination_port": dports}
    if kind == "attacker":
        return {"source_ip": np.full(n, ATTACKER_IP, dtype=object), "source_port": _ephemeral(rng, n),
                "destination_ip": np.full(n, VICTIM_IP, dtype=object), "destination_port": dports}
    if kind == "scan":  # a few well-known ports, mostly any port: many destination ports per source
        ports = np.where(rng.random(n) < 0.3, dports, rng.integers(1, 65536, n))
        return {"source_ip": np.full(n, ATTACKER_IP, dtype=object), "source_port": _ephemeral(rng, n),
                "destination_ip": np.full(n, VICTIM_IP, dtype=object), "destination_port": ports}
    if kind == "bot":
        return {"source_ip": np.array(BOT_HOSTS, dtype=object)[rng.integers(0, len(BOT_HOSTS), n)],
                "source_port": _ephemeral(rng, n),
                "destination_ip": np.full(n, BOT_CNC_IP, dtype=object), "destination_port": dports}
    raise ValueError(f"unknown endpoint kind {kind!r}")
