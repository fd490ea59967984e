"""Turn a few per-flow primitives into the 77 CICFlowMeter features, consistently.

Profiles (benign services, attacks) only decide counts, payload levels, durations, gaps, windows and
flags. Every derived feature is computed here from one concrete multiset per flow, so the identities a
reader can check on real rows hold by construction: bytes/s = bytes / duration x 1e6, subflow =
totals, min <= mean <= max, std 0 for one value, no TCP flags on UDP. Each direction's packets are
modelled as one packet at ``lo``, one at ``hi`` and the rest at ``mid``; gaps likewise. That is
enough freedom for realistic statistics and keeps everything vectorised.

CICFlowMeter quirks kept on purpose because the real files have them: the first packet is counted
twice in the ``Packet Length *`` statistics and in ``Average Packet Size``; a zero duration gives
``Infinity`` packets/s (and NaN bytes/s when there are no bytes) while Fwd/Bwd Packets/s stay 0;
``Fwd PSH Flags`` mirrors ``SYN Flag Count``; ``Fwd Header Length`` is written twice.
"""
from __future__ import annotations

import numpy as np

Arr = np.ndarray


def level_stats(n: Arr, lo: Arr, hi: Arr, mid: Arr) -> dict[str, Arr]:
    """Total, max, min, mean, sample std and squared deviations of n values {lo, hi, (n-2) x mid}."""
    n = n.astype(np.float64)
    one = n == 1
    lo = np.where(one, hi, lo).astype(np.float64)
    mid = np.where(n >= 3, mid, 0.0)
    total = np.where(n == 0, 0.0, np.where(one, hi, lo + hi + np.maximum(n - 2, 0) * mid))
    safe_n = np.maximum(n, 1)
    mean = total / safe_n
    dev = np.where(one, 0.0, (lo - mean) ** 2 + (hi - mean) ** 2 + np.maximum(n - 2, 0) * (mid - mean) ** 2)
    dev = np.where(n == 0, 0.0, dev)
    std = np.where(n >= 2, np.sqrt(dev / np.maximum(n - 1, 1)), 0.0)
    empty = n == 0
    return {
        "total": total,
        "max": np.where(empty, 0.0, hi),
        "min": np.where(empty, 0.0, lo),
        "mean": np.where(empty, 0.0, mean),
        "std": std,
        "lo": lo, "hi": hi, "mid": mid, "n": n,
    }


def gap_levels(k: Arr, total: Arr, lo_abs: Arr, hi_share: Arr) -> tuple[Arr, Arr, Arr]:
    """Split ``total`` into k gaps {lo, hi, (k-2) x mid} with lo <= mid <= hi and integer lo, hi.

    hi takes at least total/(k-1) (total/k for k<=2), which is what keeps mid <= hi.
    """
    k = k.astype(np.float64)
    total = total.astype(np.float64)
    floor_share = np.where(k >= 3, 1.0 / np.maximum(k - 1, 1), np.where(k == 2, 0.5, 1.0))
    hi = np.minimum(np.ceil(total * (floor_share + (1.0 - floor_share) * hi_share)), total)
    hi = np.where(k == 1, total, hi)
    rest = total - hi
    room = np.floor(rest / np.maximum(k - 1, 1))
    lo = np.minimum(np.maximum(np.floor(lo_abs), 1.0), room)  # distinct packets rarely share a microsecond
    lo = np.where(k == 2, rest, np.where(k == 1, total, lo))
    mid = np.where(k >= 3, (rest - lo) / np.maximum(k - 2, 1), 0.0)
    return lo, hi, mid


def gap_stats(k: Arr, total: Arr, lo_abs: Arr, hi_share: Arr) -> dict[str, Arr]:
    """Mean, std, max, min of k inter-arrival gaps summing to ``total`` (all 0 when k == 0)."""
    lo, hi, mid = gap_levels(k, total, lo_abs, hi_share)
    s = level_stats(k, lo, hi, mid)
    return {"total": np.where(k == 0, 0.0, total), "mean": s["mean"], "std": s["std"], "max": s["max"], "min": s["min"]}


def _rate(num: Arr, dur: Arr, zero_value: float | None) -> Arr:
    """num / dur x 1e6; at dur == 0 the real files give inf (or NaN for 0/0) unless zero_value is set."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = num / dur * 1e6
    if zero_value is not None:
        r = np.where(dur == 0, zero_value, r)
    return r


def _packet_length_stats(f: dict[str, Arr], b: dict[str, Arr]) -> dict[str, Arr]:
    """Whole-flow packet-length statistics with the first (forward, smallest) packet counted twice."""
    first = f["lo"]
    count = f["n"] + b["n"] + 1
    total = f["total"] + b["total"] + first
    mean = total / count
    dev = (first - mean) ** 2
    for d in (f, b):
        lvl = (d["lo"] - mean) ** 2 + (d["hi"] - mean) ** 2 + np.maximum(d["n"] - 2, 0) * (d["mid"] - mean) ** 2
        dev = dev + np.where(d["n"] == 0, 0.0, np.where(d["n"] == 1, (d["hi"] - mean) ** 2, lvl))
    var = dev / (count - 1)
    pmin = np.where(b["n"] > 0, np.minimum(f["min"], b["min"]), f["min"])
    pmax = np.maximum(f["max"], b["max"])
    return {"min": pmin, "max": pmax, "mean": mean, "std": np.sqrt(var), "var": var,
            "avg_size": total / (f["n"] + b["n"])}


def _active_idle(p: dict[str, Arr], dur: Arr) -> dict[str, Arr]:
    """Active/idle periods only for long flows that went quiet (idle_k > 0), as CICFlowMeter splits them."""
    k = p["idle_k"].astype(np.float64)
    idle_total = np.floor(dur * p["idle_frac"]) * (k > 0)
    active_total = np.where(k > 0, dur - idle_total, 0.0)
    idle = gap_stats(k, idle_total, idle_total / np.maximum(k, 1) * 0.8, p["idle_skew"])
    active = gap_stats(k, active_total, active_total / np.maximum(k, 1) * 0.5, p["idle_skew"])
    out = {}
    for name, s in (("active", active), ("idle", idle)):
        out.update({f"{name}_mean": s["mean"], f"{name}_std": s["std"], f"{name}_max": s["max"], f"{name}_min": s["min"]})
    return out


def derive_features(p: dict[str, Arr]) -> dict[str, Arr]:
    """All 77 contract features (float64) from the primitives of a batch of flows."""
    nf, nb = p["nf"].astype(np.float64), p["nb"].astype(np.float64)
    dur = p["dur"].astype(np.float64)
    tcp = p["proto"] == 6
    f = level_stats(nf, p["f_lo"], p["f_hi"], p["f_mid"])
    b = level_stats(nb, p["b_lo"], p["b_hi"], p["b_mid"])
    pl = _packet_length_stats(f, b)
    n = nf + nb
    flow_iat = gap_stats(n - 1, dur, p["iat_lo"], p["iat_skew"])
    fwd_iat = gap_stats(np.maximum(nf - 1, 0), p["fwd_iat_total"], p["iat_lo"], p["iat_skew"])
    bwd_iat = gap_stats(np.maximum(nb - 1, 0), p["bwd_iat_total"], p["iat_lo"], p["iat_skew"])
    flag = {k: np.where(tcp, p[k], 0).astype(np.float64) for k in ("fin", "syn", "rst", "psh", "ack", "urg", "ece")}
    fwd_hdr = nf * p["hdr_f"]
    act_data = (np.where(f["n"] >= 1, (f["hi"] > 0), 0) + np.where(f["n"] >= 2, (f["lo"] > 0), 0)
                + np.where(f["n"] >= 3, (f["mid"] > 0) * np.maximum(nf - 2, 0), 0))
    feats = {
        "flow_duration": dur,
        "total_fwd_packets": nf,
        "total_backward_packets": nb,
        "total_length_of_fwd_packets": f["total"],
        "total_length_of_bwd_packets": b["total"],
        "fwd_packet_length_max": f["max"], "fwd_packet_length_min": f["min"],
        "fwd_packet_length_mean": f["mean"], "fwd_packet_length_std": f["std"],
        "bwd_packet_length_max": b["max"], "bwd_packet_length_min": b["min"],
        "bwd_packet_length_mean": b["mean"], "bwd_packet_length_std": b["std"],
        "flow_bytes_s": _rate(f["total"] + b["total"], dur, None),
        "flow_packets_s": _rate(n, dur, None),
        "flow_iat_mean": flow_iat["mean"], "flow_iat_std": flow_iat["std"],
        "flow_iat_max": flow_iat["max"], "flow_iat_min": flow_iat["min"],
        "fwd_iat_total": fwd_iat["total"], "fwd_iat_mean": fwd_iat["mean"], "fwd_iat_std": fwd_iat["std"],
        "fwd_iat_max": fwd_iat["max"], "fwd_iat_min": fwd_iat["min"],
        "bwd_iat_total": bwd_iat["total"], "bwd_iat_mean": bwd_iat["mean"], "bwd_iat_std": bwd_iat["std"],
        "bwd_iat_max": bwd_iat["max"], "bwd_iat_min": bwd_iat["min"],
        "fwd_psh_flags": flag["syn"], "bwd_psh_flags": np.zeros_like(nf),
        "fwd_urg_flags": np.zeros_like(nf), "bwd_urg_flags": np.zeros_like(nf),
        "fwd_header_length": fwd_hdr, "bwd_header_length": nb * p["hdr_b"],
        "fwd_packets_s": _rate(nf, dur, 0.0), "bwd_packets_s": _rate(nb, dur, 0.0),
        "min_packet_length": pl["min"], "max_packet_length": pl["max"],
        "packet_length_mean": pl["mean"], "packet_length_std": pl["std"], "packet_length_variance": pl["var"],
        "fin_flag_count": flag["fin"], "syn_flag_count": flag["syn"], "rst_flag_count": flag["rst"],
        "psh_flag_count": flag["psh"], "ack_flag_count": flag["ack"], "urg_flag_count": flag["urg"],
        "cwe_flag_count": np.zeros_like(nf), "ece_flag_count": flag["ece"],
        "down_up_ratio": np.floor(nb / nf),
        "average_packet_size": pl["avg_size"],
        "avg_fwd_segment_size": f["mean"], "avg_bwd_segment_size": b["mean"],
        "fwd_header_length_1": fwd_hdr,
        **{k: np.zeros_like(nf) for k in ("fwd_avg_bytes_bulk", "fwd_avg_packets_bulk", "fwd_avg_bulk_rate",
                                          "bwd_avg_bytes_bulk", "bwd_avg_packets_bulk", "bwd_avg_bulk_rate")},
        "subflow_fwd_packets": nf, "subflow_fwd_bytes": f["total"],
        "subflow_bwd_packets": nb, "subflow_bwd_bytes": b["total"],
        "init_win_bytes_forward": np.where(tcp, p["win_f"], -1).astype(np.float64),
        "init_win_bytes_backward": np.where(tcp & (nb > 0), p["win_b"], -1).astype(np.float64),
        "act_data_pkt_fwd": act_data.astype(np.float64),
        "min_seg_size_forward": np.where(nf > 0, p["hdr_f"], 0).astype(np.float64),
        **_active_idle(p, dur),
    }
    return {k: np.asarray(v, dtype=np.float64) + 0.0 for k, v in feats.items()}
