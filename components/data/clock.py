"""Which clock a file's timestamps are on, decided per file from its own values, in one pass.

Why: the published TrafficLabelling files write afternoon times on a 12-hour clock without AM/PM
("7/7/2017 3:56" is 15:56), while re-saves and CICFlowMeter's own output use a 24-hour clock, and
neither the header nor the format tells which. The contract's rule reads the values: a file whose
timestamps without AM/PM have hours 1-7 (``pm_hours``) and none of 13-23 (``late_hours``) is a
12-hour day file, and its hours 1-7 are afternoon (+12 h). AM/PM timestamps say so themselves.

How, without reading the file twice: rows are written batch by batch, but the rule needs the whole
file's hours. The clock is decided per batch, optimistically. A batch with a 13-23 hour settles
"24h" for good. Before that, a batch with 1-7 hours is read as a 12-hour day file and shifted. If a
13-23 hour turns up *after* rows were shifted, the file was 24-hour after all:
``ClockContradiction`` tells the caller to ingest the file again with the clock fixed at 24 hours
(the first attempt only wrote temp files, which are discarded). So every file is read once, except
a 24-hour file whose first 1-7 hour comes before its first 13-23 hour (a capture running through
the night), which is read twice. A first pass over the timestamp column would read every
timestamped file twice instead, compressed ones included.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TWELVE_HOURS = pa.scalar(dt.timedelta(hours=12), pa.duration("ms"))


class ClockContradiction(Exception):
    """A 13-23 hour after rows were read as a 12-hour day file: ingest the file again, on 24 hours."""


@dataclass
class Clock:
    """Per-file state of the rule; ``read`` turns a batch's timestamps into real time."""

    pm_hours: tuple[int, int] = (1, 7)
    late_hours: tuple[int, int] = (13, 23)
    fixed_24h: bool = False
    shifted: bool = False
    settled_24h: bool = False
    seen_plain: bool = False
    seen_marked: bool = False

    def read(self, values: pa.Array, plain: np.ndarray, marked: np.ndarray) -> pa.Array:
        """``values`` (timestamp[ms]); ``plain``: rows parsed without AM/PM (or typed); ``marked``:
        rows that carried AM/PM. Returns the values with afternoon hours moved on where due."""
        self.seen_marked |= bool(marked.any())
        if not plain.any():
            return values
        self.seen_plain = True
        if self.fixed_24h or self.settled_24h:
            return values
        hours = pc.fill_null(pc.hour(values), -1).to_numpy(zero_copy_only=False)
        if (plain & (hours >= self.late_hours[0]) & (hours <= self.late_hours[1])).any():
            if self.shifted:
                raise ClockContradiction("hours 13-23 after hours 1-7 were read as afternoon")
            self.settled_24h = True
            return values
        early = plain & (hours >= self.pm_hours[0]) & (hours <= self.pm_hours[1])
        if not early.any():
            return values
        self.shifted = True
        return pc.if_else(pa.array(early), pc.add(values, TWELVE_HOURS), values)

    @classmethod
    def decided(cls, decision: str | None, pm_hours: tuple[int, int] = (1, 7),
                late_hours: tuple[int, int] = (13, 23)) -> Clock:
        """A clock for *part* of a file whose clock was decided over the whole file beforehand
        (``decision`` of a first pass): a part that holds only hours 1-7 of a 24-hour file must not
        read them as afternoon, and a part cannot start the file again on 24 hours. A "12h" file
        has no hour 13-23 anywhere, so the rule shifts the same hours in any part of it."""
        return cls(pm_hours, late_hours, fixed_24h=decision == "24h")

    @property
    def decision(self) -> str | None:
        """``"12h"``, ``"24h"``, or None when the file had no readable timestamp."""
        if self.shifted:
            return "12h"
        if self.seen_plain:
            return "24h"
        return "12h" if self.seen_marked else None
