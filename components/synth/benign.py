"""Benign traffic mix, calibrated on the real benign rows of Friday afternoon (first 9,998 flows).

Weights follow the real destination-port mix (53: 45 %, 443: 27 %, 80: 10 %, server-to-client
halves on ephemeral ports: 16 %, then NTP, NetBIOS, LDAP, SSH, FTP, 8080 ...). Each service's
medians (packets, payloads, durations, windows) are read off the same rows, so that per-feature
medians of the synthetic benign traffic stay near the real ones.
"""
from __future__ import annotations

from components.synth.profiles import FlowProfile

_TCP_WIN_F = ((8192, 29200, 65535, 256, 253, 254, 255, 123, 114, 946, 29, 31, 33),
              (24, 21, 2, 6, 4, 3, 3, 3, 2, 2, 6, 6, 6))
_TCP_WIN_B = ((-1, 0, 61, 123, 31, 256, 255, 946, 29200, 127, 110, 114, 229, 1059),
              (28, 6, 9, 6, 5, 5, 4, 3, 3, 2, 2, 2, 4, 3))

BENIGN_PROFILES: tuple[FlowProfile, ...] = (
    FlowProfile("dns", 0.45, 17, "dns", ports=((53,), (1,)), nf=(1.5, 0.45), nf_max=8, nb_ratio=(1.25, 0.3),
                p_nb0=0.05, f_hi=(42, 0.25), b_hi=(110, 0.5), lo_frac=(1.0, 1.0), dur=(24_000, 1.6),
                fwd_iat_frac=(0.002, 1.5), bwd_iat_frac=(0.0004, 0.6), iat_lo=(3, 0.8),
                hdr_f=((20, 32), (0.85, 0.15)), hdr_b=((20, 32), (0.85, 0.15))),
    FlowProfile("https", 0.2, 6, "out", ports=((443,), (1,)), nf=(12, 1.0), nb_ratio=(1.1, 0.4), p_nb0=0.03,
                f_hi=(400, 0.9), b_hi=(1400, 0.5), hi_cap=5840, p_f_lo0=0.5, p_b_lo0=0.5, lo_frac=(0.0, 0.05),
                dur=(6_000_000, 2.0), iat_lo=(3, 1.5), hdr_f=((20, 32), (0.5, 0.5)), hdr_b=((20, 32), (0.5, 0.5)),
                win_f=_TCP_WIN_F, win_b=_TCP_WIN_B,
                flags={"psh": 0.55, "ack": 0.25, "urg": 0.05, "syn": 0.1, "fin": 0.02}, p_idle=0.5),
    FlowProfile("https_ack", 0.07, 6, "out", ports=((443,), (1,)), nf=(1.8, 0.4), nf_max=4, nb_ratio=(0.5, 0.3),
                p_nb0=0.5, f_hi=(6, 0.01), b_hi=(6, 0.01), lo_frac=(1.0, 1.0), dur=(300, 2.0),
                hdr_f=((20,), (1,)), hdr_b=((20,), (1,)), win_f=_TCP_WIN_F, win_b=_TCP_WIN_B,
                flags={"ack": 0.3, "urg": 0.05}),
    FlowProfile("http", 0.04, 6, "out", ports=((80,), (1,)), nf=(8, 0.9), nb_ratio=(1.0, 0.4), p_nb0=0.05,
                f_hi=(450, 0.6), b_hi=(1460, 0.3), p_f_lo0=0.5, p_b_lo0=0.5, lo_frac=(0.0, 0.05),
                dur=(5_000_000, 2.0), win_f=_TCP_WIN_F, win_b=_TCP_WIN_B,
                flags={"psh": 0.7, "ack": 0.3, "urg": 0.1, "syn": 0.05, "fin": 0.05}, p_idle=0.5),
    FlowProfile("http_keepalive", 0.06, 6, "out", ports=((80,), (1,)), nf=(2.5, 0.5), nf_max=20,
                nb_ratio=(0.7, 0.4), p_nb0=0.3, f_hi=(6, 0.01), b_hi=(6, 0.01), lo_frac=(0.0, 1.0),
                p_f_lo0=0.3, dur=(5_000_000, 1.5), win_f=_TCP_WIN_F, win_b=_TCP_WIN_B,
                flags={"psh": 0.5, "ack": 0.2, "urg": 0.1}, p_idle=0.3),
    FlowProfile("server_half", 0.157, 6, "rev", ports=((443, 80), (0.8, 0.2)), nf=(1.8, 0.4), nf_max=56,
                nb_ratio=(0.6, 0.3), p_nb0=0.45, f_hi=(6, 0.6), b_hi=(6, 0.3), lo_frac=(0.0, 1.0), p_f_lo0=0.3,
                dur=(60, 1.8), iat_lo=(20, 1.0), hdr_f=((20, 32), (0.7, 0.3)), hdr_b=((20, 32), (0.7, 0.3)),
                win_f=((243, 60, 256, 1400, 6734, 29200), (4, 2, 2, 1, 1, 1)), win_b=((-1, 0, 561), (5, 3, 2)),
                flags={"ack": 0.55, "urg": 0.1, "fin": 0.02, "rst": 0.002}),
    FlowProfile("ntp", 0.005, 17, "out", ports=((123,), (1,)), nf=(1.0, 0.2), nf_max=2, nb_ratio=(1.0, 0.01),
                f_hi=(48, 0.01), b_hi=(48, 0.01), lo_frac=(1.0, 1.0), dur=(35_000, 1.5)),
    FlowProfile("netbios", 0.003, 17, "bcast", ports=((137, 138), (0.8, 0.2)), nf=(8, 0.6), nf_max=20,
                p_nb0=0.8, f_hi=(50, 0.1), b_hi=(50, 0.1), lo_frac=(0.9, 1.0), dur=(2_000, 3.0),
                fwd_iat_frac=(1.0, 0.01)),
    FlowProfile("lan_services", 0.019, 6, "lan",
                ports=((8080, 22, 21, 465, 389, 139, 3268, 445, 88), (19, 14, 12, 11, 9, 5, 5, 3, 3)),
                nf=(6, 1.2), nb_ratio=(1.0, 0.4), p_nb0=0.1, f_hi=(120, 1.0), b_hi=(200, 1.0),
                p_f_lo0=0.5, p_b_lo0=0.5, lo_frac=(0.0, 0.1), dur=(300_000, 2.5),
                win_f=_TCP_WIN_F, win_b=_TCP_WIN_B, flags={"psh": 0.5, "ack": 0.3, "syn": 0.1, "urg": 0.05},
                p_idle=0.3),
)
