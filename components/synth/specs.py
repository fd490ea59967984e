"""What the synthetic days and attacks are: the real day files, dates, windows and documented attacks.

The schedule follows the CIC-IDS2017 description (Sharafaldin et al., ICISSP 2018; the UNB dataset
page): each attack ran once, as a burst in a known time range of a known day, from the attacker
network (172.16.0.1 behind the firewall NAT) to the victim web server 192.168.10.50, except the Ares
botnet, whose infected hosts beacon out to their C&C server. Keeping these facts in one table lets
the generator, the tests and the docs agree on them.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from components.data.contract import BENIGN

ATTACKER_IP = "172.16.0.1"
VICTIM_IP = "192.168.10.50"
BOT_CNC_IP = "205.174.165.73"
BOT_HOSTS = ("192.168.10.5", "192.168.10.8", "192.168.10.9", "192.168.10.14", "192.168.10.15")


@dataclass(frozen=True)
class AttackSpec:
    """One attack family: its label (normalised and as published) and its documented burst."""

    family: str
    label: str           # normalised label, as the contract expects after ingest
    raw_label: str       # the label as written in the published CSV (cp1252 dash for web attacks)
    start: dt.time       # documented start of the burst (local time of the capture)
    end: dt.time
    share: float         # expected fraction of the day's flows that belong to this attack


@dataclass(frozen=True)
class DaySpec:
    """One published day file: its stem, capture date, working window and attack families."""

    key: str
    stem: str
    date: dt.date
    start: dt.time
    end: dt.time
    attacks: tuple[str, ...]


_DASH = "\u2013"  # written as byte 0x96 once the CSV is encoded in cp1252, as in the original files

ATTACKS: dict[str, AttackSpec] = {
    a.family: a
    for a in (
        AttackSpec("ftp_patator", "FTP-Patator", "FTP-Patator", dt.time(9, 20), dt.time(10, 20), 0.04),
        AttackSpec("ssh_patator", "SSH-Patator", "SSH-Patator", dt.time(14, 0), dt.time(15, 0), 0.03),
        AttackSpec("dos_slowloris", "DoS slowloris", "DoS slowloris", dt.time(9, 47), dt.time(10, 10), 0.03),
        AttackSpec("dos_hulk", "DoS Hulk", "DoS Hulk", dt.time(10, 43), dt.time(11, 0), 0.2),
        AttackSpec("web_brute_force", "Web Attack - Brute Force", f"Web Attack {_DASH} Brute Force",
                   dt.time(9, 20), dt.time(10, 0), 0.02),
        AttackSpec("web_xss", "Web Attack - XSS", f"Web Attack {_DASH} XSS", dt.time(10, 15), dt.time(10, 35), 0.01),
        AttackSpec("web_sql_injection", "Web Attack - Sql Injection", f"Web Attack {_DASH} Sql Injection",
                   dt.time(10, 40), dt.time(10, 42), 0.005),
        AttackSpec("bot", "Bot", "Bot", dt.time(10, 2), dt.time(11, 2), 0.02),
        AttackSpec("portscan", "PortScan", "PortScan", dt.time(13, 55), dt.time(14, 35), 0.3),
        AttackSpec("ddos", "DDoS", "DDoS", dt.time(15, 56), dt.time(16, 16), 0.3),
    )
}

ATTACK_FAMILIES: tuple[str, ...] = tuple(ATTACKS)

DAYS: dict[str, DaySpec] = {
    d.key: d
    for d in (
        DaySpec("monday", "Monday-WorkingHours.pcap_ISCX", dt.date(2017, 7, 3),
                dt.time(8, 0), dt.time(17, 0), ()),
        DaySpec("tuesday", "Tuesday-WorkingHours.pcap_ISCX", dt.date(2017, 7, 4),
                dt.time(8, 0), dt.time(17, 0), ("ftp_patator", "ssh_patator")),
        DaySpec("wednesday", "Wednesday-workingHours.pcap_ISCX", dt.date(2017, 7, 5),
                dt.time(8, 0), dt.time(17, 0), ("dos_slowloris", "dos_hulk")),
        DaySpec("thursday", "Thursday-WorkingHours-Morning-WebAttacks.pcap_ISCX", dt.date(2017, 7, 6),
                dt.time(8, 0), dt.time(12, 0), ("web_brute_force", "web_xss", "web_sql_injection")),
        DaySpec("friday_morning", "Friday-WorkingHours-Morning.pcap_ISCX", dt.date(2017, 7, 7),
                dt.time(8, 0), dt.time(12, 0), ("bot",)),
        DaySpec("friday_portscan", "Friday-WorkingHours-Afternoon-PortScan.pcap_ISCX", dt.date(2017, 7, 7),
                dt.time(13, 0), dt.time(17, 0), ("portscan",)),
        DaySpec("friday_ddos", "Friday-WorkingHours-Afternoon-DDos.pcap_ISCX", dt.date(2017, 7, 7),
                dt.time(13, 0), dt.time(17, 0), ("ddos",)),
    )
}

LABELS: dict[str, str] = {"benign": BENIGN, **{k: a.label for k, a in ATTACKS.items()}}
RAW_LABELS: dict[str, str] = {"benign": BENIGN, **{k: a.raw_label for k, a in ATTACKS.items()}}
