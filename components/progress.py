"""Progress bars, in one place: tqdm on stderr when it is a terminal, else nothing.

Why only on a terminal: in a log file every redraw of a bar is one more line; there the callers
print one line per file instead (those lines stay where they are). Every bar is a ``tqdm``, so
callers update it the same way whether it shows or not (a disabled one does nothing).
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Self

from tqdm import tqdm

#: A file smaller than this is read before a bar would help: it gets none.
MIN_FILE_BYTES = 32 << 20


def interactive() -> bool:
    """Whether progress bars belong on stderr: only on a terminal."""
    return sys.stderr.isatty()


def progress_bar(total: int, desc: str, unit: str, enabled: bool = True, leave: bool = False) -> tqdm:
    """A bar of ``total`` units (rows, windows, bytes), shown when ``enabled`` and on a terminal."""
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, dynamic_ncols=True, file=sys.stderr,
                leave=leave, disable=not (enabled and interactive()))


class FileBar:
    """A bar in bytes with rows/s for one file being read or scored; :meth:`update` is the
    readers' progress callback ``(bytes done, bytes total, rows done)``."""

    def __init__(self, name: str, size: Callable[[], int], enabled: bool = True) -> None:
        shown = enabled and interactive()
        total = size() if shown else 0
        self.bar = progress_bar(total, name, "B", enabled=shown and total >= MIN_FILE_BYTES)

    @property
    def callback(self) -> Callable[[int, int, int], None] | None:
        """:meth:`update` while the bar shows, else None (the reader then reports nothing)."""
        return None if self.bar.disable else self.update

    def update(self, done: int, total: int, rows: int) -> None:
        if self.bar.disable:
            return
        self.bar.update(max(0, done - self.bar.n))
        elapsed = self.bar.format_dict.get("elapsed") or 1e-9
        self.bar.set_postfix(rows=rows, rows_s=f"{rows / elapsed:,.0f}", refresh=False)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
