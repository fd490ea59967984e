"""components.progress: a bar only when asked for and on a terminal, and a file bar only for a
file big enough to watch."""
from __future__ import annotations

from components import progress
from components.progress import MIN_FILE_BYTES, FileBar, progress_bar


def test_bars_show_only_on_a_terminal_when_asked(monkeypatch):
    monkeypatch.setattr(progress, "interactive", lambda: False)
    assert progress_bar(10, "rows", " rows").disable
    with FileBar("big.parquet", lambda: MIN_FILE_BYTES) as bar:
        assert bar.callback is None
    monkeypatch.setattr(progress, "interactive", lambda: True)
    assert progress_bar(10, "rows", " rows", enabled=False).disable
    with FileBar("small.csv", lambda: MIN_FILE_BYTES - 1) as bar:
        assert bar.callback is None  # read before a bar would help
    with FileBar("big.parquet", lambda: MIN_FILE_BYTES) as bar:
        bar.callback(1000, MIN_FILE_BYTES, 10)
        bar.callback(600, MIN_FILE_BYTES, 12)  # a position never moves back
        assert bar.bar.n == 1000 and bar.bar.postfix.startswith("rows=12")
