"""In which order were the files captured? Time order must never be the alphabet.

Why: "later" decides what a model trains on and what it is calibrated and tested on. Sorted by
name, Thursday comes before Tuesday. The published CIC-IDS2017 files say their capture day and
part in their names (``Monday-WorkingHours.pcap_ISCX.csv``,
``Friday-WorkingHours-Afternoon-DDos.pcap_ISCX.csv``; the parquet re-release writes
``DDoS-Friday-no-metadata.parquet``), so the order is read from there when every file names a
day. Otherwise, when every file carries timestamps, files are ordered by their first flow's time;
otherwise the order the user gave is kept and the decision says it is a guess.

Within one capture part, the published files split the afternoon or the day by attack: their
documented times give the sub-order (Friday afternoon: PortScan 13:55-14:35 before DDoS
15:56-16:16; Thursday: web attacks in the morning, infiltration in the afternoon; Friday: the
botnet in the morning).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_PARTS = (("morning", 0), ("afternoon", 2))
#: Attack words in published file names, with their place inside a capture day.
_SUB_ORDER = (("bot", 0, 1), ("webattack", 0, 1), ("web_attack", 0, 1), ("infilteration", 2, 1),
              ("infiltration", 2, 1), ("portscan", 2, 1), ("ddos", 2, 2))

NAME = "capture day and part from file names"
TIMESTAMP = "first timestamp of each file"
GIVEN = "order given on the command line"


@dataclass(frozen=True)
class FileOrder:
    """Files in capture order, how that was decided, and whether it is a guess."""

    files: list[str]
    method: str
    guessed: bool
    keys: dict[str, str] = field(default_factory=dict)  # file -> what its place was read from

    def warning(self) -> str | None:
        if not self.guessed or len(self.files) < 2:
            return None
        return (f"file order is a guess ({self.method}): name the capture day in file names "
                f"(Monday-...) or keep timestamps, so that 'later' means later in time")

    def to_dict(self) -> dict:
        return {"files": list(self.files), "method": self.method, "guessed": self.guessed,
                "keys": dict(self.keys)}


def capture_key(name: str) -> tuple[int, int, int] | None:
    """(day, part, sub-order) read from a file name, or None when the name gives no day."""
    text = re.sub(r"[^a-z_]+", "", name.lower().replace("-", "_").replace(" ", "_"))
    flat = text.replace("_", "")
    day = next((i for i, d in enumerate(DAYS) if d in flat), None)
    if day is None:
        return None
    part, sub = 1, 0  # a whole-day file sits between a morning and an afternoon file
    for word, rank in _PARTS:
        if word in flat:
            part = rank
    for word, rank, order in _SUB_ORDER:
        if word.replace("_", "") in flat:
            if part == 1:
                part = rank
            sub = order
            break
    return day, part, sub


def order_files(names: list[str], first_timestamps: dict[str, dt.datetime | None] | None = None
                ) -> FileOrder:
    """Capture order of ``names`` (given order breaks ties); see the module docstring."""
    keys = {n: capture_key(n) for n in names}
    if names and all(k is not None for k in keys.values()):
        ordered = sorted(names, key=lambda n: (keys[n], names.index(n)))
        return FileOrder(ordered, NAME, guessed=False,
                         keys={n: _describe(keys[n]) for n in ordered})
    stamps = first_timestamps or {}
    if names and all(stamps.get(n) is not None for n in names):
        ordered = sorted(names, key=lambda n: (stamps[n], names.index(n)))
        return FileOrder(ordered, TIMESTAMP, guessed=False,
                         keys={n: stamps[n].isoformat() for n in ordered})
    return FileOrder(list(names), GIVEN, guessed=True,
                     keys={n: _describe(keys[n]) if keys[n] else "no day in name" for n in names})


def _describe(key: tuple[int, int, int]) -> str:
    day, part, sub = key
    return f"{DAYS[day]} {('morning', 'day', 'afternoon')[part]}" + (f" #{sub}" if sub else "")
