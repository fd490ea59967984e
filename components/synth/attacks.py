"""Attack families as flow profiles, after the documented CIC-IDS2017 attacks.

Numbers follow what the attacks do (and, for DDoS and PortScan, the real rows in
``../shared/data/cicids2017``): LOIC floods port 80 with small requests that pull big pages; Hulk
sends unique GETs; slowloris holds connections open with partial headers; the scan is tiny SYN/RST
flows over many ports; Patator repeats short login dialogues on 21/22 (with the server's delay on a
failed login); Ares beacons to its C&C on 8080; the web attacks post forms of growing size to
192.168.10.50:80. Ports 80/21/22/8080 also carry benign traffic, so port alone does not separate them.
"""
from __future__ import annotations

from components.synth.profiles import FlowProfile

_P80 = ((80,), (1,))
_SCAN_PORTS = (21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 443, 445, 993, 995, 1723, 3306, 3389, 5900, 8080)

ATTACK_PROFILES: dict[str, FlowProfile] = {
    "ddos": FlowProfile("ddos", 1, 6, "attacker", ports=_P80, nf=(3.5, 0.25), nf_max=10, nb_ratio=(1.8, 0.5),
                        p_nb0=0.35, f_hi=(20, 0.2), b_hi=(5840, 0.05), hi_cap=5840, p_f_lo0=0.9, p_b_lo0=0.9,
                        lo_frac=(0.0, 0.0), dur=(1_400_000, 0.9), fwd_iat_frac=(0.3, 0.8), iat_lo=(3, 0.5),
                        hdr_f=((20, 32), (0.4, 0.6)), hdr_b=((20, 32), (0.4, 0.6)),
                        win_f=((8192, 256), (0.8, 0.2)), win_b=((229, -1), (0.7, 0.3)),
                        flags={"psh": 0.3, "ack": 0.6, "urg": 0.02}),
    "dos_hulk": FlowProfile("dos_hulk", 1, 6, "attacker", ports=_P80, nf=(5, 0.3), nf_max=12, nb_ratio=(0.9, 0.3),
                            p_nb0=0.2, f_hi=(360, 0.15), b_hi=(1460, 0.05), p_f_lo0=1.0, p_b_lo0=1.0,
                            dur=(12_000, 1.2), iat_lo=(2, 0.5), hdr_f=((32,), (1,)), hdr_b=((32,), (1,)),
                            win_f=((29200,), (1,)), win_b=((28960, 235), (0.6, 0.4)),
                            flags={"psh": 0.8, "ack": 0.5, "fin": 0.3}),
    "dos_slowloris": FlowProfile("dos_slowloris", 1, 6, "attacker", ports=_P80, nf=(7, 0.3), nf_max=30,
                                 nb_ratio=(0.6, 0.3), p_nb0=0.3, f_hi=(230, 0.1), b_hi=(0.3, 0.01), p_f_lo0=1.0,
                                 dur=(95_000_000, 0.15), fwd_iat_frac=(1.0, 0.01), iat_lo=(10_000_000, 0.2),
                                 hdr_f=((32,), (1,)), hdr_b=((32,), (1,)), win_f=((29200,), (1,)),
                                 win_b=((28960,), (1,)), flags={"psh": 0.9, "ack": 0.9}, p_idle=0.95),
    "portscan": FlowProfile("portscan", 1, 6, "scan", ports=(_SCAN_PORTS, (1,) * len(_SCAN_PORTS)),
                            nf=(1.0, 0.15), nf_max=3, nb_ratio=(1.0, 0.01), p_nb0=0.1, f_hi=(0.3, 0.01),
                            b_hi=(0.3, 0.01), dur=(45, 0.5), iat_lo=(45, 0.5), hdr_f=((20, 32), (0.3, 0.7)),
                            hdr_b=((20, 32), (0.3, 0.7)), win_f=((1024, 29200, 253), (0.5, 0.3, 0.2)),
                            win_b=((0, 243, -1), (0.6, 0.2, 0.2)), flags={"syn": 0.5, "rst": 0.4, "ack": 0.3, "urg": 0.3}),
    "ftp_patator": FlowProfile("ftp_patator", 1, 6, "attacker", ports=((21,), (1,)), nf=(10, 0.15), nf_max=20,
                               nb_ratio=(1.3, 0.1), f_hi=(20, 0.15), b_hi=(34, 0.1), p_f_lo0=1.0, p_b_lo0=0.0,
                               lo_frac=(0.6, 0.9), dur=(4_500_000, 0.3), iat_lo=(2, 0.5),
                               hdr_f=((32,), (1,)), hdr_b=((32,), (1,)), win_f=((29200,), (1,)),
                               win_b=((227,), (1,)), flags={"psh": 0.9, "ack": 0.3, "fin": 0.2}),
    "ssh_patator": FlowProfile("ssh_patator", 1, 6, "attacker", ports=((22,), (1,)), nf=(16, 0.2), nf_max=40,
                               nb_ratio=(1.4, 0.1), f_hi=(640, 0.1), b_hi=(980, 0.1), p_f_lo0=1.0, p_b_lo0=1.0,
                               dur=(3_000_000, 0.4), iat_lo=(3, 0.5), hdr_f=((32,), (1,)), hdr_b=((32,), (1,)),
                               win_f=((29200,), (1,)), win_b=((247,), (1,)), flags={"psh": 0.9, "ack": 0.4, "fin": 0.3}),
    "bot": FlowProfile("bot", 1, 6, "bot", ports=((8080,), (1,)), nf=(4, 0.3), nf_max=12, nb_ratio=(0.8, 0.3),
                       p_nb0=0.25, f_hi=(230, 0.3), b_hi=(130, 0.3), p_f_lo0=1.0, p_b_lo0=1.0,
                       dur=(80_000, 1.0), iat_lo=(200, 0.5), hdr_f=((20,), (1,)), hdr_b=((20,), (1,)),
                       win_f=((8192,), (1,)), win_b=((237, 64240), (0.7, 0.3)), flags={"psh": 0.8, "ack": 0.4}),
    "web_brute_force": FlowProfile("web_brute_force", 1, 6, "attacker", ports=_P80, nf=(4, 0.5), nf_max=40,
                                   nb_ratio=(0.8, 0.3), p_nb0=0.2, f_hi=(600, 0.15), b_hi=(1460, 0.05),
                                   p_f_lo0=1.0, p_b_lo0=1.0, dur=(5_500_000, 0.4), iat_lo=(3, 0.5),
                                   hdr_f=((32,), (1,)), hdr_b=((32,), (1,)), win_f=((29200,), (1,)),
                                   win_b=((28960,), (1,)), flags={"psh": 0.7, "ack": 0.5, "fin": 0.2}),
    "web_xss": FlowProfile("web_xss", 1, 6, "attacker", ports=_P80, nf=(5, 0.5), nf_max=40, nb_ratio=(0.8, 0.3),
                           p_nb0=0.2, f_hi=(1100, 0.2), b_hi=(1460, 0.05), p_f_lo0=1.0, p_b_lo0=1.0,
                           dur=(5_500_000, 0.8), iat_lo=(3, 0.5), hdr_f=((32,), (1,)), hdr_b=((32,), (1,)),
                           win_f=((29200,), (1,)), win_b=((28960,), (1,)), flags={"psh": 0.7, "ack": 0.5, "fin": 0.2}),
    "web_sql_injection": FlowProfile("web_sql_injection", 1, 6, "attacker", ports=_P80, nf=(5, 0.4), nf_max=40,
                                     nb_ratio=(0.8, 0.3), p_nb0=0.2, f_hi=(480, 0.3), b_hi=(1460, 0.05),
                                     p_f_lo0=1.0, p_b_lo0=1.0, dur=(5_200_000, 0.6), iat_lo=(3, 0.5),
                                     hdr_f=((32,), (1,)), hdr_b=((32,), (1,)), win_f=((29200,), (1,)),
                                     win_b=((28960,), (1,)), flags={"psh": 0.7, "ack": 0.5, "fin": 0.2}),
}
